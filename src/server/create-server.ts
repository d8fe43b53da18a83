/**
 * Assembles the gRPC server: kv.v1 (key-value-service.ts), health
 * (health.ts) and reflection (reflection.ts) on one grpc-js Server; binds
 * with the credentials it is given, and drains on shutdown within a bounded
 * grace. Only kv.v1 calls are authenticated: health and reflection are open.
 * On a second port if asked, the same kv.v1 over HTTP
 * (http/create-http-server.ts: Connect, gRPC-Web, the web console), drained
 * with it.
 */
import http2 from 'node:http2';
import tls from 'node:tls';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../logger';
import { StoreClosedError } from '../store/errors';
import type { KeyValueStore } from '../store/key-value-store';
import type { CallObserver } from './call-observer';
import { type ConnectionLimits, type LimitedListener, grpcConnectionOptions, listenWithLimits } from './connection-limits';
import { type GrpcDeps, OpenStreams } from './grpc-call';
import { addHealth } from './health';
import { OpenStreamQuota } from './open-stream-quota';
import { type ConsoleAssets } from './http/console-route';
import type { HttpServer, HttpTls } from './http/create-http-server';
import { createKeyValueService, keyValueServiceDefinition } from './key-value-service';
import { addReflection } from './reflection';
import { logTlsRefusals } from './tls-refusals';
import { serveUnaryOverHttp2 } from './unary-over-http2';

export interface KvServerOptions {
  store: KeyValueStore;
  logger: Logger;
  /** Largest value the store accepts; the message limit is set well above it so the store can name the limit. */
  maxValueBytes: number;
  maxKeyBytes: number;
  /** What each caller may do (default: everything). */
  authenticate?: GrpcDeps['authenticate'];
  /** Transport security (default: plaintext); tls-credentials.ts makes rotatable TLS credentials. */
  credentials?: ServerCredentials;
  /** Serve grpc.reflection (default true). It describes the API, never data. */
  reflection?: boolean;
  /** What one client may hold: handshake time, keepalive, idle and age, streams, connections. */
  connections: ConnectionLimits;
  /** Told of every kv.v1 call (the server's metrics). */
  calls?: CallObserver;
  /** The web console's files, served on the HTTP port. */
  consoleAssets?: ConsoleAssets;
  /** TLS for the HTTP port (default: plaintext): the gRPC port's certificates, rotated with them. */
  httpTls?: HttpTls;
}

export interface KvServer {
  /** Binds and starts serving; resolves to the bound port. */
  listen(address: string): Promise<number>;
  /** Binds the HTTP port (Connect, gRPC-Web, console) and starts serving it; resolves to the bound port. */
  listenHttp(address: string): Promise<number>;
  /**
   * Stops accepting and ends the streams that run until their client stops them (Watch, KeepAlive); lets the
   * other calls in flight (Backup too) finish for up to graceMs (0: none), then cancels what is left and closes
   * every connection. `why`: what the streams ended are told (default: the server is shutting down).
   */
  shutdown(graceMs: number, why?: string): Promise<void>;
  /** What grpc.health.v1 says: listening, not draining, and the store takes writes. */
  isServing(): boolean;
}

/**
 * The largest response message sent, as etcd's server (2^31 - 1: no
 * practical limit). A response is whole by the time it is sent, and what a
 * client can take is the client's own limit (the SDK's is 64 MiB). A lower
 * limit here only turned responses the client could have read into errors:
 * a Txn or Update whose results passed it was committed, and its caller was
 * told RESOURCE_EXHAUSTED; a Watch revision past it could never be sent.
 */
const MAX_SEND_BYTES = 2 ** 31 - 1;

export function createServer({
  store,
  logger,
  maxValueBytes,
  maxKeyBytes,
  authenticate,
  credentials,
  reflection = true,
  connections,
  calls,
  consoleAssets,
  httpTls,
}: KvServerOptions): KvServer {
  // A google.protobuf.Value can be many times larger on the wire than as JSON
  // (a number is 9+ bytes, "0," is 2), and an oversized value should reach
  // the store, which names the limit and the size, rather than be cut off by
  // gRPC with RESOURCE_EXHAUSTED.
  const maxMessageBytes = Math.max(16 * 1024 * 1024, 16 * maxValueBytes + maxKeyBytes + 64 * 1024);
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': MAX_SEND_BYTES,
    // kv serves no channelz service, so grpc-js's per-call channelz counting (clock reads and trackers on every call) only costs.
    'grpc.enable_channelz': 0,
    ...grpcConnectionOptions(connections),
  });
  let listener: LimitedListener | undefined;
  const streams = new OpenStreams();
  // Health Watch and reflection need no credentials: each connection may hold only so many of them.
  const quota = new OpenStreamQuota(connections.maxHealthStreamsPerConnection);
  if (reflection) addReflection(server, streams, quota, logger);
  const health = addHealth(server, quota);
  // Health follows the store: NOT_SERVING while it cannot take writes (it refuses them, or, under --workers, the
  // store owner does not answer), SERVING again once it can.
  let serving: boolean | undefined;
  const onStoreFailed = (): void => {
    if (serving === undefined) return; // not listening yet, or draining
    const failure = store.failure;
    if (serving === (failure === undefined)) return;
    serving = failure === undefined;
    if (failure === undefined) logger.info('the store takes writes again; health is SERVING');
    else logger.error(storeFailure(failure), 'the store cannot take writes now; health is NOT_SERVING');
    health.set(serving ? 'SERVING' : 'NOT_SERVING');
  };
  // A store can fail or heal with no call in flight to notice: look now and then.
  const watchStore = setInterval(onStoreFailed, 1000).unref();
  const deps: GrpcDeps = { store, logger, authenticate, onStoreFailed, streams };
  const service = createKeyValueService(deps, calls);
  server.addService(keyValueServiceDefinition(), service.implementation);
  let httpServer: HttpServer | undefined;
  const connectionsOpen = new Set<http2.ServerHttp2Session>();

  return {
    isServing: () => serving === true,

    listen: async (address) => {
      listener = await listenWithLimits(
        server,
        credentials ?? ServerCredentials.createInsecure(),
        address,
        connections,
        logger,
        (injected) => {
          serveUnaryOverHttp2(
            server,
            injected,
            service.unaryRoutes,
            { maxReceiveBytes: maxMessageBytes, maxSendBytes: MAX_SEND_BYTES },
            service.streamGates,
          );
          trackConnections(server, connectionsOpen);
          const http2Server = newestHttp2Server(server);
          if (http2Server instanceof tls.Server) logTlsRefusals(http2Server, 'grpc', logger);
        },
      );
      // The store is open before the server is built, so listening is the moment we can serve.
      serving = store.failure === undefined;
      health.set(serving ? 'SERVING' : 'NOT_SERVING');
      if (!serving) logger.error(storeFailure(store.failure as Error), 'the store cannot take writes now; health is NOT_SERVING');
      return listener.port;
    },

    listenHttp: async (address) => {
      // Loaded only when an HTTP port is asked for: Connect and its protobuf runtime take about 0.1 s to load, which every start-up would pay.
      const { createHttpServer } = await import('./http/create-http-server');
      const grpcPort = (): number | undefined => listener?.port;
      httpServer ??= createHttpServer({ deps, calls, maxMessageBytes, consoleAssets, tls: httpTls, connections, grpcPort });
      return httpServer.listen(address);
    },

    shutdown: async (graceMs, why = 'the server is shutting down') => {
      clearInterval(watchStore);
      listener?.close();
      serving = undefined;
      health.set('NOT_SERVING');
      health.endWatches();
      // Watch, KeepAlive and reflection run until their client stops them and would hold the drain for the whole grace:
      // they end now (UNAVAILABLE), and their clients resume elsewhere or later. A Backup may finish, as a unary call may.
      streams.endOpenEnded(new StoreClosedError(why));
      // tryShutdown waits for every open call with no bound of its own: the grace is that bound.
      const grpcStopped = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const httpStopped = httpServer?.shutdown(graceMs);
      // With no grace (--shutdown-grace-ms 0) calls in flight are cancelled at once, as asked: no warning for that.
      if (graceMs > 0) {
        if (await settlesWithin(Promise.all([grpcStopped, httpStopped]), graceMs)) return;
        logger.warn({ graceMs }, 'grace period over; cancelling calls still in flight');
      }
      streams.endAll(new StoreClosedError(`${why}, and its grace period for calls in flight is over`));
      server.forceShutdown();
      // forceShutdown destroys only the connections it lists for channelz, none with channelz off (as here): one
      // whose call had not ended (a request never finished) stayed open and held the process after the grace.
      for (const session of connectionsOpen) session.destroy(undefined, http2.constants.NGHTTP2_CANCEL);
      // The HTTP port closes its own connections at the same moment.
      await httpStopped;
    },
  };
}

/**
 * Keeps `open` current with the connections (HTTP/2 sessions) of the HTTP/2
 * server grpc-js made last (server.createConnectionInjector), a grpc-js
 * internal as in unary-over-http2.ts, which checks it is there.
 */
function trackConnections(server: Server, open: Set<http2.ServerHttp2Session>): void {
  newestHttp2Server(server)?.on('session', (session: http2.ServerHttp2Session) => {
    open.add(session);
    session.once('close', () => open.delete(session));
  });
}

/** The HTTP/2 server grpc-js made last (a TLS one with TLS credentials): the internal trackConnections reads. */
function newestHttp2Server(server: Server): http2.Http2Server | http2.Http2SecureServer | undefined {
  const http2Servers = (server as unknown as { http2Servers: Map<http2.Http2Server | http2.Http2SecureServer, unknown> }).http2Servers;
  return [...http2Servers.keys()].at(-1);
}

/**
 * A store's failure as the health line logs it: its code and message, no
 * stack or cause (the file store has logged the I/O error itself; pino would
 * repeat the cause's text in the message, with two stacks).
 */
function storeFailure(failure: Error): { failure: { code: string | undefined; message: string } } {
  return { failure: { code: (failure as { code?: string }).code, message: failure.message } };
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
