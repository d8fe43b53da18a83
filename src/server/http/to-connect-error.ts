/**
 * describeError (to-status.ts) rendered for Connect and gRPC-Web. Apart from
 * to-status.ts because it needs Connect, which loads only with the HTTP port.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { status } from '@grpc/grpc-js';
import { errorReasonToJSON } from '../../gen/kv/v1/kv';
import type { Logger } from '../../logger';
import { NESTING_LIMIT_TEXT } from '../../store/value-rules';
import { InvalidArgumentError } from '../service-errors';
import { REASON_TRAILER, describeError } from '../to-status';

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
  if (described.reason === undefined) return new ConnectError(described.message, connectCode(described.code), metadata);
  const reason = errorReasonToJSON(described.reason);
  metadata.set(REASON_TRAILER, reason);
  const data: Record<string, string> = {};
  for (const [name, value] of Object.entries(described.trailers)) {
    metadata.set(name, value);
    data[name.replace(/^kv-/, '')] = value;
  }
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
/** How protobuf-es words a JSON body nested past its recursion limit (as INVALID_ARGUMENT, without kv's reason). */
const JSON_DEPTH_FAILURE = /^cannot decode google\.protobuf\.Value from JSON: maximum recursion depth/;

/**
 * A protobuf request (application/proto, connect+proto, gRPC-Web) that does
 * not decode is the caller's mistake, and the gRPC port answers it
 * INVALID_ARGUMENT "request could not be decoded: ..." (decode-request.ts);
 * connect-es answers INTERNAL "parse binary: premature EOF" (and a JSON
 * value nested past its depth limit INVALID_ARGUMENT in its own words,
 * without kv's reason). connect-es
 * parses the body before any code of ours runs and offers no hook into it,
 * but it aborts the call's signal with that very error just before it
 * renders it: given the reason, this rewrites such an error in place into
 * the gRPC port's answer (code, message, kv-reason). Anything else is left
 * as it is.
 */
export function rewordDecodeFailure(reason: unknown, logger: Logger): void {
  if (!(reason instanceof ConnectError)) return;
  let failure: string;
  if (reason.code === Code.Internal && reason.rawMessage.startsWith(BINARY_PARSE_FAILURE)) {
    failure = reason.rawMessage.slice(BINARY_PARSE_FAILURE.length);
  } else if (reason.code === Code.InvalidArgument && JSON_DEPTH_FAILURE.test(reason.rawMessage)) {
    // A JSON body is the same: a value nested past connect-es's depth limit, which is past the gRPC port's.
    failure = reason.rawMessage;
  } else {
    return;
  }
  const answer = toConnectError(decodeFailure(failure), logger);
  const { code, rawMessage, message, metadata, details } = answer;
  Object.assign(reason, { code, rawMessage, message, metadata, details });
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
