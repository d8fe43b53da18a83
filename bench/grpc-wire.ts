/**
 * gRPC at the byte level, over node:http2: the length-prefixed frame h2load
 * posts as a request body, and a client that sends such a body exactly as
 * h2load does and reads grpc-status from the trailers. h2load counts any
 * HTTP 200 as a success, and gRPC answers errors with HTTP 200 too, so this
 * is how the bench proves a body h2load will send is one the server accepts.
 */
import http2 from 'node:http2';

/** The 5-byte gRPC message header (uncompressed flag, big-endian length) and the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The headers h2load is given too (see bench/h2load.ts). */
export const GRPC_REQUEST_HEADERS = { 'content-type': 'application/grpc', te: 'trailers' } as const;

/** A call that did not answer grpc-status 0. */
export class GrpcCallError extends Error {
  constructor(
    readonly method: string,
    readonly status: string,
    detail: string,
  ) {
    super(`${method} answered grpc-status ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** One HTTP/2 connection for many unary calls. */
export class GrpcConnection {
  private readonly session: http2.ClientHttp2Session;

  constructor(address: string) {
    this.session = http2.connect(`http://${address}`);
    // Errors surface through the calls; an unhandled 'error' event would crash the bench instead.
    this.session.on('error', () => {});
  }

  /** Posts `body` (one gRPC frame) to /method; resolves with the response message, or rejects unless grpc-status is 0. */
  call(method: string, body: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({ ':method': 'POST', ':path': `/${method}`, ...GRPC_REQUEST_HEADERS });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      stream.on('response', (received) => (headers = received));
      // A trailers-only answer (most errors) carries grpc-status in the headers themselves.
      stream.on('trailers', (trailers) => (headers = { ...headers, ...trailers }));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('end', () => {
        const status = String(headers['grpc-status'] ?? `missing (HTTP ${String(headers[':status'])})`);
        if (status !== '0') {
          return reject(new GrpcCallError(method, status, decodeURIComponent(String(headers['grpc-message'] ?? ''))));
        }
        const response = Buffer.concat(chunks);
        if (response.length < 5 || response.readUInt32BE(1) !== response.length - 5) {
          return reject(new Error(`${method}: the response is not one gRPC frame (${response.length} bytes)`));
        }
        resolve(response.subarray(5));
      });
      stream.end(body);
    });
  }

  close(): void {
    this.session.close();
  }
}

/** One call on a connection of its own. */
export async function callOnce(address: string, method: string, body: Uint8Array): Promise<Buffer> {
  const connection = new GrpcConnection(address);
  try {
    return await connection.call(method, body);
  } finally {
    connection.close();
  }
}
