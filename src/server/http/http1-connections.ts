/**
 * The HTTP port's HTTP/1.1 connections (plaintext and over TLS), and what
 * shutdown does to them. HTTP/1.1 has no GOAWAY: a keep-alive connection
 * would take call after call until the grace period ended, and one with no
 * request open (Node's HTTP/2 server keeps no list of its HTTP/1.1
 * connections to close) held the drain for up to its keep-alive timeout. At
 * shutdown, then, a connection with no request open is closed; a call in
 * flight finishes with `Connection: close` (or, if its headers have gone
 * already, its connection closes once it is answered); and a request that
 * arrives after all is answered 503 with `Connection: close`.
 */
import type http from 'node:http';
import type net from 'node:net';

export class Http1Connections {
  /** Every HTTP/1.1 connection, with the responses it has open. */
  private readonly open = new Map<net.Socket, Set<http.ServerResponse>>();
  private closing = false;

  /** A connection the port serves HTTP/1.1 on (after the protocol sniff, or ALPN). */
  add(socket: net.Socket): void {
    if (this.closing) return void socket.destroy();
    this.open.set(socket, new Set());
    socket.once('close', () => this.open.delete(socket));
  }

  /** A request on one of them: false if shutdown has begun, and it was refused. */
  admit(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const socket = request.socket;
    if (this.closing) {
      response.shouldKeepAlive = false;
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('the server is shutting down: send the call again on a new connection\n');
      return false;
    }
    let responses = this.open.get(socket);
    if (responses === undefined) this.open.set(socket, (responses = new Set()));
    const inFlight = responses;
    inFlight.add(response);
    response.once('close', () => {
      inFlight.delete(response);
      if (this.closing && inFlight.size === 0) socket.end();
    });
    return true;
  }

  /** At shutdown: no new calls; connections with none in flight close now, the others once their calls are answered. */
  close(): void {
    this.closing = true;
    for (const [socket, responses] of this.open) {
      if (responses.size === 0) socket.destroy();
      // Node writes `Connection: close` and ends the connection after such a response.
      for (const response of responses) if (!response.headersSent) response.shouldKeepAlive = false;
    }
  }
}
