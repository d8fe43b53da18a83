/**
 * What a gRPC client pointed at the HTTP port is answered (grpcurl, a
 * grpc-js or grpc-go client given the --http-listen address): a gRPC status
 * it prints, UNIMPLEMENTED (reflection: FAILED_PRECONDITION, see
 * NotGrpcPortError) with kv-reason NOT_GRPC, saying this is kv's HTTP port
 * and where its gRPC port is, for every path (kv.v1's methods, reflection,
 * health). connect-node, which serves no gRPC here, would answer 415 (404
 * for reflection and health) with a line of text that gRPC clients do not
 * show, reporting the answer in their own words instead ("server closed the
 * stream without sending trailers", "Received HTTP status code 415"). The
 * TypeScript SDK passes over an address that answers NOT_GRPC for the next
 * in its list, as it does one that answers in HTTP without gRPC.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../../logger';
import { NotGrpcPortError } from '../service-errors';
import { toGrpcStatus } from '../to-status';

/** gRPC's content types (application/grpc, +proto, +json, ...), not gRPC-Web's (application/grpc-web...), which this port serves. */
const GRPC_CONTENT_TYPE = /^\s*application\/grpc(?![-\w])/i;

/** Server reflection's one method, in each of its versions (grpcurl tries v1, then v1alpha). */
const REFLECTION_PATH = /^\/grpc\.reflection\.v1(alpha)?\.ServerReflection\//;

export function isGrpcRequest(contentType: string | undefined): boolean {
  return contentType !== undefined && GRPC_CONTENT_TYPE.test(contentType);
}

/** What refuseGrpc writes to: an HTTP/1.1 or HTTP/2 response (connect-node's NodeServerResponse is either). */
type HeadersOnlyResponse =
  { writeHead(status: number, headers: OutgoingHttpHeaders): unknown; end(): unknown } | { stream: ServerHttp2Stream };

/**
 * Answers a gRPC request with its status alone (gRPC's Trailers-Only
 * response). `grpcPort`: the port the server's gRPC listener bound, if it
 * is known.
 */
export function refuseGrpc(response: HeadersOnlyResponse, path: string, grpcPort: number | undefined, logger: Logger): void {
  const where = grpcPort === undefined ? 'its --listen address' : `its --listen address (port ${grpcPort})`;
  const error = new NotGrpcPortError(
    `this is kv-server's HTTP port (Connect, gRPC-Web and the web console), not its gRPC port: send gRPC calls to ${where}`,
    REFLECTION_PATH.test(path),
  );
  const { code, details, metadata } = toGrpcStatus(error, logger);
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/grpc',
    'grpc-status': String(code),
    'grpc-message': encodeURI(details ?? ''),
    ...metadata?.toHttp2Headers(),
  };
  // Over HTTP/2 the status must come in the one HEADERS frame that ends the stream: Node's compatibility API sends an
  // empty DATA frame after it to end it, and grpc-go then reports "server closed the stream without sending trailers".
  if ('stream' in response) return response.stream.respond({ ':status': 200, ...headers }, { endStream: true });
  response.writeHead(200, headers);
  response.end();
}
