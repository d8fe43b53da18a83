/**
 * gRPC at the byte level, over node:http2: the length-prefixed frame h2load
 * posts as a request body, a client that sends such a body exactly as
 * h2load does and reads grpc-status from the trailers, and streams whose
 * messages are read frame by frame (the watch clients). h2load counts any
 * HTTP 200 as a success, and gRPC answers errors with HTTP 200 too, so this
 * is how the bench proves a body h2load will send is one the server accepts.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';

/** Where a server is reached: host:port, TLS when it has a CA to trust, and headers every call carries (a bearer token). */
export interface Endpoint {
  readonly address: string;
  /** PEM CA that signed the server's certificate: the endpoint speaks TLS. */
  readonly caFile?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const endpointUrl = (endpoint: Endpoint): string => `${endpoint.caFile ? 'https' : 'http'}://${endpoint.address}`;

/** The 5-byte gRPC message header (uncompressed flag, big-endian length) and the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Splits a stream's bytes into gRPC messages, however the chunks fall. */
export class GrpcFrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The whole messages completed by `chunk`. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: Buffer[] = [];
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) break;
      messages.push(this.pending.subarray(5, 5 + length));
      this.pending = this.pending.subarray(5 + length);
    }
    return messages;
  }
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

/** One HTTP/2 connection for many calls. */
export class GrpcConnection {
  private readonly session: http2.ClientHttp2Session;
  private readonly headers: Readonly<Record<string, string>>;

  constructor(endpoint: Endpoint) {
    this.session = http2.connect(endpointUrl(endpoint), endpoint.caFile ? { ca: readFileSync(endpoint.caFile) } : {});
    this.headers = endpoint.headers ?? {};
    // Errors surface through the calls; an unhandled 'error' event would crash the bench instead.
    this.session.on('error', () => {});
  }

  /** Opens a call to /method with the endpoint's headers; the caller writes the request frames. */
  open(method: string): http2.ClientHttp2Stream {
    return this.session.request({ ':method': 'POST', ':path': `/${method}`, ...GRPC_REQUEST_HEADERS, ...this.headers });
  }

  /** Posts `body` (one gRPC frame) to /method; resolves with the response message, or rejects unless grpc-status is 0. */
  call(method: string, body: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = this.open(method);
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
export async function callOnce(endpoint: Endpoint, method: string, body: Uint8Array): Promise<Buffer> {
  const connection = new GrpcConnection(endpoint);
  try {
    return await connection.call(method, body);
  } finally {
    connection.close();
  }
}
