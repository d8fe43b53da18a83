/**
 * describeError (to-status.ts) rendered for Connect and gRPC-Web. Apart from
 * to-status.ts because it needs Connect, which loads only with the HTTP port.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { isFieldError } from '@bufbuild/protobuf/reflect';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { status } from '@grpc/grpc-js';
import { errorReasonToJSON } from '../../gen/kv/v1/kv';
import type { Logger } from '../../logger';
import { InvalidKeyError } from '../../store/errors';
import { NESTING_LIMIT_TEXT } from '../../store/value-rules';
import { InvalidArgumentError } from '../service-errors';
import { REASON_TRAILER, RETRY_PUSHBACK_TRAILER, describeError } from '../to-status';

/** The domain of the google.rpc.ErrorInfo detail that Connect errors carry. */
export const ERROR_DOMAIN = 'kv.v1';

/**
 * describeError rendered for Connect and gRPC-Web: the same code and message;
 * the reason and data as metadata under the gRPC trailer names (response
 * headers of a unary Connect call, the end-of-stream metadata of a stream,
 * trailers in gRPC-Web), and once more as a google.rpc.ErrorInfo detail
 * (reason, domain "kv.v1", the data without the "kv-" prefix), whose "debug"
 * field puts them in the error JSON itself for curl and browsers.
 */
export function toConnectError(error: unknown, logger: Logger): ConnectError {
  if (error instanceof ConnectError) return error;
  const described = describeError(error, logger);
  const metadata = new Headers();
  // HTTP's 401 names how to authenticate (RFC 9110): a bearer token, as the authorization header carries it.
  if (connectCode(described.code) === Code.Unauthenticated) metadata.set('www-authenticate', 'Bearer realm="kv"');
  if (described.reason === undefined) return new ConnectError(described.message, connectCode(described.code), metadata);
  const reason = errorReasonToJSON(described.reason);
  metadata.set(REASON_TRAILER, reason);
  const data: Record<string, string> = {};
  for (const [name, value] of Object.entries(described.trailers)) {
    metadata.set(name, value);
    data[name.replace(/^kv-/, '')] = value;
  }
  // HTTP's own word for when to come back (a 429), which generic clients and proxies read; seconds, rounded up.
  const pushbackMs = described.trailers[RETRY_PUSHBACK_TRAILER];
  if (pushbackMs !== undefined) metadata.set('retry-after', String(Math.ceil(Number(pushbackMs) / 1000)));
  const connectError = new ConnectError(described.message, connectCode(described.code), metadata);
  connectError.details.push({
    type: 'google.rpc.ErrorInfo',
    value: encodeErrorInfo(reason, data),
    debug: { reason, domain: ERROR_DOMAIN, metadata: data },
  });
  return connectError;
}

/** How connect-es words a protobuf request body that does not decode (createBinarySerialization), as INTERNAL. */
const BINARY_PARSE_FAILURE = 'parse binary: ';
/**
 * How connect-es words a request (or a stream's message) over readMaxBytes
 * (limit-io.ts, and connect-node's compression.ts after decompression), as
 * RESOURCE_EXHAUSTED: the size when it is known, then the limit.
 */
const READ_MAX_BYTES_FAILURE = /^message(?: size)?(?: (\d+))? is larger than configured readMaxBytes (\d+)( after decompression)?$/;

/**
 * The failures connect-es raises before any code of ours runs, in kv's words,
 * with its codes and reasons, as the gRPC port answers the same requests:
 *
 * - a protobuf body that does not decode (application/proto,
 *   connect+proto, gRPC-Web) is INVALID_ARGUMENT "request could not be
 *   decoded: ..." (decode-request.ts), not INTERNAL "parse binary: premature
 *   EOF";
 * - a JSON body kv's own checks refuse (json-request.ts) is their
 *   InvalidArgumentError, with its reason; one that protobuf-es refuses past
 *   them (an unknown enum name, bad base64, a value nested past its depth
 *   limit) is INVALID_ARGUMENT "request could not be decoded: ..." too;
 * - a request past the size limit names the limit and kv's flag, not
 *   connect-node's readMaxBytes option.
 *
 * connect-es offers no hook into its parsing, but it aborts the call's
 * signal with the very error just before it renders it: given the reason,
 * this rewrites such an error in place. Anything else is left as it is.
 */
export function rewordConnectFailure(reason: unknown, logger: Logger): void {
  if (!(reason instanceof ConnectError)) return;
  const failure = kvFailureFor(reason);
  if (failure === undefined) return;
  const answer = failure instanceof ConnectError ? failure : toConnectError(failure, logger);
  const { code, rawMessage, message, metadata, details } = answer;
  Object.assign(reason, { code, rawMessage, message, metadata, details });
}

/** connect-es's `reason` as kv answers it, or undefined if it is not one of those above. */
function kvFailureFor(reason: ConnectError): Error | undefined {
  const cause = reason.cause;
  if (reason.code === Code.Internal && reason.rawMessage.startsWith(BINARY_PARSE_FAILURE)) {
    return decodeFailure(reason.rawMessage.slice(BINARY_PARSE_FAILURE.length));
  }
  if (reason.code === Code.InvalidArgument && cause instanceof InvalidArgumentError) return cause;
  // A JSON body protobuf-es refused: connect-es passes on its error as the cause (createJsonSerialization).
  if (reason.code === Code.InvalidArgument && cause instanceof Error && !(cause instanceof ConnectError)) {
    return loneSurrogateInKey(cause) ?? decodeFailure(jsonFailure(cause));
  }
  const tooLarge = reason.code === Code.ResourceExhausted ? READ_MAX_BYTES_FAILURE.exec(reason.rawMessage) : null;
  if (tooLarge !== null) {
    const [, size, limit, decompressed] = tooLarge;
    const what = decompressed === undefined ? 'the request' : 'the request, decompressed,';
    const sized = size === undefined ? `${what} is` : `${what} is ${size} bytes,`;
    return new ConnectError(
      `${sized} larger than this server's limit of ${limit} bytes for a request (16 × --max-value-bytes + --max-key-bytes + 64 KiB, at least 16 MiB)`,
      Code.ResourceExhausted,
    );
  }
  return undefined;
}

/**
 * What protobuf-es says of a JSON request it cannot read: "cannot decode
 * field kv.v1.SetRequest.key from JSON: <why>" becomes "key: <why>" (its
 * FieldError names the field).
 */
function jsonFailure(error: Error): string {
  if (!isFieldError(error.cause)) return error.message;
  const field = error.cause.field();
  return `${field.kind === 'field' ? field.jsonName : field.name}: ${error.cause.message}`;
}

/** The string fields that name keys: a lone surrogate there is INVALID_KEY, as the store's key rules say it (key-rules.ts). */
const KEY_FIELDS = new Set(['key', 'prefix']);

/**
 * A key or prefix spelt with a lone surrogate ("\ud800") in a JSON body:
 * protobuf-es refuses it ("invalid UTF8") while it parses, before kv sees the
 * request. Answered as the store answers such a key (INVALID_KEY).
 */
function loneSurrogateInKey(error: Error): InvalidKeyError | undefined {
  if (!isFieldError(error.cause) || !/invalid UTF8/i.test(error.cause.message)) return undefined;
  const field = error.cause.field();
  if (field.kind !== 'field' || !KEY_FIELDS.has(field.name)) return undefined;
  return new InvalidKeyError(`${field.name} is not valid Unicode text (it has a lone surrogate)`);
}

/** protobuf-es's reason as the gRPC port's decoder (decode-request.ts) words the same failure. */
function decodeFailure(failure: string): InvalidArgumentError {
  // protobuf-es passes on the message of the TextDecoder that refused the bytes.
  if (/not valid for encoding utf-8/i.test(failure))
    return new InvalidArgumentError('request could not be decoded: a string field is not valid UTF-8');
  // Its recursion limit (100 messages); only google.protobuf.Value nests in kv.v1, and the gRPC port's own limit is lower.
  if (/maximum recursion depth/.test(failure)) {
    return new InvalidArgumentError(`request could not be decoded: value is nested too deeply: ${NESTING_LIMIT_TEXT}`, 'INVALID_VALUE');
  }
  return new InvalidArgumentError(`request could not be decoded: ${failure}`);
}

/** gRPC and Connect number their codes alike (Connect names them in lower snake case on the wire). */
function connectCode(code: status): Code {
  return Code[Code[code] as keyof typeof Code];
}

/** google.rpc.ErrorInfo{ reason=1 string, domain=2 string, metadata=3 map<string, string> }. */
function encodeErrorInfo(reason: string, data: Record<string, string>): Uint8Array {
  const writer = new BinaryWriter().tag(1, WireType.LengthDelimited).string(reason).tag(2, WireType.LengthDelimited).string(ERROR_DOMAIN);
  for (const [key, value] of Object.entries(data)) {
    writer
      .tag(3, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string(key)
      .tag(2, WireType.LengthDelimited)
      .string(value)
      .join();
  }
  return writer.finish();
}
