/**
 * What an HTTP request shows of its caller, in the shape the gRPC side gives
 * authenticate(): the headers as metadata (authorization: Bearer ...
 * included), and the peer address.
 */
import { Metadata } from '@grpc/grpc-js';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Caller } from '../grpc-call';

export function httpCaller(request: IncomingMessage | Http2ServerRequest): Caller {
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const one of typeof value === 'string' ? [value] : value) {
      try {
        if (name.endsWith('-bin')) metadata.add(name, Buffer.from(one, 'base64'));
        else metadata.add(name, one);
      } catch {
        // A header name that is legal in HTTP but not in gRPC metadata carries nothing authenticate() reads.
      }
    }
  }
  const socket = request.socket;
  const address = socket.remoteAddress ?? 'unknown';
  return { metadata, peer: `${address.includes(':') ? `[${address}]` : address}:${socket.remotePort ?? 0}` };
}
