/**
 * What an HTTP request shows of its caller, in the shape the gRPC side gives
 * authenticate(): the headers as metadata (authorization: Bearer ...
 * included), the peer address, and on a mutual TLS connection the client's
 * verified certificate. The method is added by the request gate, which
 * knows it (connect-call.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { Metadata } from '@grpc/grpc-js';
import type { Caller } from '../grpc-call';
import { headerLines } from './header-lines';

export function httpCaller(request: IncomingMessage | Http2ServerRequest): Omit<Caller, 'method'> {
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(':') || name === 'authorization' || value === undefined) continue;
    for (const one of typeof value === 'string' ? [value] : value) {
      try {
        if (name.endsWith('-bin')) metadata.add(name, Buffer.from(one, 'base64'));
        else metadata.add(name, one);
      } catch {
        // A header name that is legal in HTTP but not in gRPC metadata carries nothing authenticate() reads.
      }
    }
  }
  // Node keeps only the first of several authorization headers (HTTP/1.1 and HTTP/2 alike): every one is
  // taken from the raw headers, so that authentication refuses two ("send exactly one"), as on the gRPC port.
  for (const line of headerLines(request.rawHeaders, 'authorization')) {
    try {
      metadata.add('authorization', line);
    } catch {
      // Not legal in gRPC metadata: still a token sent, refused as malformed, never passed over for the certificate.
      metadata.add('authorization', 'malformed');
    }
  }
  const socket = 'stream' in request ? request.stream.session?.socket : request.socket;
  const address = socket?.remoteAddress ?? 'unknown';
  const peer = `${address.includes(':') ? `[${address}]` : address}:${socket?.remotePort ?? 0}`;
  const tls: TLSSocket | undefined = socket !== undefined && 'encrypted' in socket ? socket : undefined;
  // As grpc-js: a certificate only when TLS verified it against --tls-client-ca.
  const certificate = tls?.authorized === true ? tls.getPeerCertificate() : undefined;
  return certificate === undefined ? { metadata, peer } : { metadata, peer, certificate };
}
