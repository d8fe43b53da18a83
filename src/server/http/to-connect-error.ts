/**
 * describeError (to-status.ts) rendered for Connect and gRPC-Web. Apart from
 * to-status.ts because it needs Connect, which loads only with the HTTP port.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { status } from '@grpc/grpc-js';
import { errorReasonToJSON } from '../../gen/kv/v1/kv';
import type { Logger } from '../../logger';
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
