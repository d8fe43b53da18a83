/**
 * The HTTP port: kv.v1 over the Connect protocol (JSON or protobuf, HTTP/1.1
 * or HTTP/2) and gRPC-Web, through connect-node, and the web console's
 * static files for every other GET. Plaintext connections are HTTP/1.1 or,
 * when they open with the HTTP/2 preface, HTTP/2 (h2c); with TLS, ALPN
 * chooses. Connections are held to the gRPC port's limits
 * (http-connections.ts). Shutdown stops accepting, lets calls in flight
 * finish within the grace period, then closes what is left.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { createContextValues } from '@connectrpc/connect';
import { isLoopbackHost, isLoopbackHostHeader } from '../../security/listen-policy';
import type { CallObserver } from '../call-observer';
import type { ConnectionLimits } from '../connection-limits';
import type { GrpcDeps } from '../grpc-call';
import type { TlsMaterial } from '../tls-credentials';
import { logTlsRefusals } from '../tls-refusals';
import { authenticateRequest, CALLER } from './connect-call';
import { addKeyValueService, methodObservers, type Protocols } from './connect-service';
import { type ConsoleAssets, consoleRoute } from './console-route';
import { HttpConnectionLimits } from './http-connections';
import { Http1Connections } from './http1-connections';
import { httpCaller } from './http-caller';
import { DRAIN_REFUSED_BYTES, drainUnreadBody } from './drain-body';
import { headerLines } from './header-lines';
import { nodeAdapter, requestAuthority } from './node-adapter';

export interface HttpServerOptions {
  deps: GrpcDeps;
  /** Told of every kv.v1 call (the server's metrics), as on the gRPC port. */
  calls?: CallObserver;
  /** The largest request message read (the gRPC port's limit). */
  maxMessageBytes: number;
  /** The console's files; undefined serves a note that it is not built. */
  consoleAssets?: ConsoleAssets;
  /** Serve TLS (HTTP/1.1 and HTTP/2 by ALPN); plaintext if absent. */
  tls?: HttpTls;
  /** The gRPC port's connection limits, applied to this port's own connections (http-connections.ts). */
  connections: ConnectionLimits;
  /** The port the server's gRPC listener bound, once it has: a gRPC call sent here is told of it. */
  grpcPort?: () => number | undefined;
}

/** The gRPC port's certificates (tls-credentials.ts), and a way to hear of their rotation on SIGHUP. */
export interface HttpTls {
  material: TlsMaterial;
  onRotate(listener: (material: TlsMaterial) => void): void;
}

export interface HttpServer {
  /** Binds host:port and starts serving; resolves to the bound port. */
  listen(address: string): Promise<number>;
  /** Stops accepting; calls in flight may finish for up to graceMs, then every connection is closed. */
  shutdown(graceMs: number): Promise<void>;
}

/** Connect and gRPC-Web; real gRPC has its own port, with reflection and health. */
const PROTOCOLS: Protocols = { connect: true, grpcWeb: true, grpc: false };

/** The first bytes of every HTTP/2 connection (RFC 9113, 3.4); no HTTP/1.1 request starts with them. */
const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

export function createHttpServer({
  deps,
  calls,
  maxMessageBytes,
  consoleAssets,
  tls,
  connections,
  grpcPort = () => undefined,
}: HttpServerOptions): HttpServer {
  const limits = new HttpConnectionLimits(connections, deps.logger);
  const checkClient = (session: http2.Http2Session): void => limits.checkClient(session);
  const observerOf = methodObservers(calls);
  const handler = nodeAdapter({
    routes: (router) => addKeyValueService(router, deps, observerOf, PROTOCOLS),
    ...PROTOCOLS,
    requestGate: authenticateRequest(deps, observerOf),
    contextValues: (request) => createContextValues().set(CALLER, httpCaller(request)),
    readMaxBytes: maxMessageBytes,
    fallback: consoleRoute(consoleAssets),
    logger: deps.logger,
    checkClient,
    grpcPort,
  });

  const http1Connections = new Http1Connections();
  let loopbackOnly = false;
  const serve: typeof handler = (request, response) => {
    if (request.httpVersionMajor === 1) {
      // An HTTP/1.1 connection has shown it speaks HTTP (HTTP/2 ones do with their SETTINGS).
      limits.spoke(request.socket);
      if (!http1Connections.admit(request as http.IncomingMessage, response as http.ServerResponse)) return;
    }
    // RFC 9112, 3.2: a request with more than one Host line is a 400. Node keeps the first and drops the rest unsaid,
    // where a proxy in front may have routed or checked by another one.
    if (headerLines(request.rawHeaders, 'host').length > 1) {
      void drainUnreadBody(request, DRAIN_REFUSED_BYTES, checkClient)
        .then(() => {
          const text = 'bad request: Host was sent more than once: send it once\n';
          response.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
          response.end(text);
        })
        .catch((reason: unknown) => deps.logger.warn({ err: reason }, 'HTTP port: answering a request failed'));
      return;
    }
    // The host connect-node builds the call's URL from (over HTTP/2 :authority first), not another header beside it.
    if (loopbackOnly && !isLoopbackHostHeader(requestAuthority(request))) {
      void drainUnreadBody(request, DRAIN_REFUSED_BYTES, checkClient)
        .then(() => {
          response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
          response.end(
            'this server listens on a loopback address and answers only requests addressed to one (Host: localhost, 127.0.0.1 or [::1])\n',
          );
        })
        .catch((reason: unknown) => deps.logger.warn({ err: reason }, 'HTTP port: answering a request failed'));
      return;
    }
    handler(request, response);
  };

  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  // HTTP/2 makes a connection's session as the connection is handed to it, before it returns: `newest`, for limits.limitSession.
  let newest: http2.ServerHttp2Session | undefined;
  const onSession = (session: http2.ServerHttp2Session): void => {
    newest = session;
  };
  const limitSession = (socket: net.Socket): void => {
    if (newest !== undefined) limits.limitSession(newest, socket);
    newest = undefined;
  };

  let http1: http.Server | undefined;
  let front: net.Server;
  if (tls === undefined) {
    http1 = http.createServer({ keepAliveTimeout: limits.http1KeepAliveMs }, serve);
    const h2c = http2.createServer({ settings: limits.http2Settings }, serve);
    h2c.on('session', onSession);
    // noDelay as http.Server has it: with Nagle's algorithm, a response written in two parts waits for the client's delayed ACK.
    front = net.createServer({ noDelay: true }, (socket) => {
      if (socket.destroyed) return; // refused: past --max-connections
      track(socket);
      // A connection that says nothing would otherwise wait here forever (HTTP's own timeouts start after the hand-over).
      limits.awaitFirstRequest(socket);
      sniffProtocol(socket, (isHttp2) => {
        if (!isHttp2) {
          http1Connections.add(socket);
          return void http1?.emit('connection', socket);
        }
        h2c.emit('connection', socket);
        limitSession(socket);
      });
    });
  } else {
    // With a client CA, as on the gRPC port: a client without a certificate that chains to it is refused.
    const mutual = tls.material.clientCa !== undefined;
    const context = (material: TlsMaterial): SecureContextOptions => ({ cert: material.cert, key: material.key, ca: material.clientCa });
    const secure = http2.createSecureServer(
      {
        ...context(tls.material),
        requestCert: mutual,
        rejectUnauthorized: mutual,
        allowHTTP1: true,
        // Node's default is 120 s.
        handshakeTimeout: connections.handshakeTimeoutMs,
        settings: limits.http2Settings,
      },
      serve,
    );
    // Node's HTTP/2 server leaves its HTTP/1.1 connections without a keep-alive timeout: idle ones stayed open for good.
    Object.assign(secure, { keepAliveTimeout: limits.http1KeepAliveMs });
    // After the handshake, a connection has as long again for its first request (HTTP/2: its SETTINGS). This
    // listener runs after the HTTP/2 server's own, which made the session of an HTTP/2 one.
    secure.on('secureConnection', (socket: TLSSocket) => {
      limits.awaitFirstRequest(socket);
      if (socket.alpnProtocol === 'h2') limitSession(socket);
      else http1Connections.add(socket);
    });
    // New connections get the new certificates; open ones keep theirs.
    tls.onRotate((material) => secure.setSecureContext(context(material)));
    secure.on('session', onSession);
    secure.on('connection', track);
    logTlsRefusals(secure, 'http', deps.logger);
    front = secure;
  }
  limits.capConnections(front);

  return {
    listen: (address) =>
      new Promise((resolve, reject) => {
        const split = address.lastIndexOf(':');
        const host = address.slice(0, split).replace(/^\[(.*)\]$/, '$1');
        // A web page from elsewhere can reach a loopback port through DNS rebinding (its own name
        // resolving to 127.0.0.1), as the same origin; its requests then carry its name as Host.
        loopbackOnly = isLoopbackHost(host);
        front.once('error', reject);
        front.listen(Number(address.slice(split + 1)), host, () => {
          front.off('error', reject);
          // Once listening, an accept error (EMFILE, say) must not crash the server; the next connection may do.
          front.on('error', (error) => deps.logger.error({ err: error }, 'HTTP port: accepting a connection failed'));
          // The HTTP/1.1 server gets its connections handed over and never listens itself; 'listening' is
          // what starts its connection tracking, which enforces headersTimeout and requestTimeout and
          // lets closeIdleConnections() find idle keep-alive connections.
          http1?.emit('listening');
          resolve((front.address() as net.AddressInfo).port);
        });
      }),

    shutdown: (graceMs) =>
      new Promise((resolve) => {
        front.close();
        // HTTP/2 sessions get GOAWAY; HTTP/1.1 connections close once their calls in flight are answered, idle ones now.
        limits.close();
        http1Connections.close();
        http1?.close();
        const force = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        const poll = setInterval(() => {
          if (sockets.size > 0) return;
          clearInterval(poll);
          clearTimeout(force);
          resolve();
        }, 20);
      }),
  };
}

/** Reads until the first bytes tell HTTP/2 from HTTP/1.1, puts them back, and hands the socket on. */
function sniffProtocol(socket: net.Socket, handOver: (isHttp2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, HTTP2_PREFACE.length);
    const isHttp2 = seen.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (isHttp2 && seen.length < HTTP2_PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(seen);
    handOver(isHttp2);
    // HTTP/2 reads what was put back itself, on the next tick; a flowing socket would hand it to no one.
    if (!isHttp2) socket.resume();
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}
