/**
 * The gRPC port's connection limits (connection-limits.ts), the same flags,
 * on the HTTP port, whose connections are Node's (HTTP/1.1, and HTTP/2 with
 * or without TLS) rather than grpc-js's:
 *
 * - connections past --max-connections, or past
 *   --max-connections-per-address from one client address, are closed as
 *   soon as they are accepted, counted for this port alone;
 * - a new connection must show it speaks HTTP within
 *   --handshake-timeout-ms: its first request's headers (HTTP/1.1), or the
 *   HTTP/2 preface and SETTINGS; with TLS the handshake has that long, and
 *   then the first request as long again;
 * - on HTTP/2: --max-concurrent-streams in SETTINGS, pings every
 *   --keepalive-time-ms (a connection that does not answer one within
 *   --keepalive-timeout-ms is closed), GOAWAY after --max-connection-idle-ms
 *   without a call and after --max-connection-age-ms (then calls in flight
 *   have --max-connection-age-grace-ms to finish);
 * - HTTP/1.1 has no pings, and a connection between requests is closed after
 *   5 s (Node's keep-alive timeout), or --max-connection-idle-ms if shorter.
 */
import type http2 from 'node:http2';
import type net from 'node:net';
import type { Logger } from '../../logger';
import { connectionCap, type ConnectionLimits } from '../connection-limits';

/** Node's keep-alive timeout for an HTTP/1.1 connection between requests. */
const HTTP1_KEEP_ALIVE_MS = 5_000;

export class HttpConnectionLimits {
  /** Connections that have not yet shown they speak HTTP, with their deadline. */
  private readonly pending = new Map<net.Socket, NodeJS.Timeout>();

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
  ) {}

  /** For http2.createServer and createSecureServer. */
  get http2Settings(): http2.Settings {
    return { maxConcurrentStreams: this.limits.maxConcurrentStreams };
  }

  /** How long an HTTP/1.1 connection may wait between requests (an http.Server's keepAliveTimeout). */
  get http1KeepAliveMs(): number {
    const idle = this.limits.maxConnectionIdleMs;
    return idle > 0 ? Math.min(idle, HTTP1_KEEP_ALIVE_MS) : HTTP1_KEEP_ALIVE_MS;
  }

  /**
   * The server that accepts the port's connections closes those past
   * --max-connections (or --max-connections-per-address from one address)
   * as soon as they are accepted (before anything else
   * sees them: TLS, our own listener), and says so now and then. Counted
   * here rather than by Node's maxConnections, which under --workers hands
   * a refused connection back to the supervisor to wait for a worker with
   * room (as many as come); the gRPC port's listener counts the same way.
   */
  capConnections(server: net.Server): void {
    const admit = connectionCap(this.limits, this.logger, 'HTTP port: ');
    server.prependListener('connection', (socket: net.Socket) => void admit(socket));
  }

  /** Starts the deadline of a new connection (with TLS, one whose handshake is done) to send its first request. */
  awaitFirstRequest(socket: net.Socket): void {
    const timer = setTimeout(() => {
      this.pending.delete(socket);
      this.logger.debug(
        { peer: `${socket.remoteAddress}:${socket.remotePort}` },
        'HTTP port: closed a connection that sent no request in time',
      );
      socket.destroy();
    }, this.limits.handshakeTimeoutMs).unref();
    this.pending.set(socket, timer);
    socket.once('close', () => this.spoke(socket));
  }

  /** The connection sent a request (HTTP/2: its SETTINGS): no deadline any more. */
  spoke(socket: net.Socket): void {
    const timer = this.pending.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.pending.delete(socket);
  }

  /**
   * The HTTP/2 limits for the session on `socket` (which awaitFirstRequest
   * is timing): its SETTINGS in time, then pings, idle and age. A session
   * that is closed without its peer's help is closed by its socket (a
   * session destroyed before the client's preface left the TLS connection
   * open).
   */
  limitSession(session: http2.ServerHttp2Session, socket: net.Socket): void {
    const { keepaliveTimeMs, keepaliveTimeoutMs, maxConnectionIdleMs, maxConnectionAgeMs, maxConnectionAgeGraceMs } = this.limits;
    const timers = new Set<NodeJS.Timeout>();
    const after = (ms: number, run: () => void): NodeJS.Timeout => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        run();
      }, ms).unref();
      timers.add(timer);
      return timer;
    };
    const cancel = (timer: NodeJS.Timeout | undefined): void => {
      if (timer === undefined) return;
      clearTimeout(timer);
      timers.delete(timer);
    };
    const usable = (): boolean => !session.closed && !session.destroyed;

    session.once('remoteSettings', () => this.spoke(socket));

    // Idle: no call open for maxConnectionIdleMs.
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      if (maxConnectionIdleMs > 0) idle = after(maxConnectionIdleMs, () => usable() && session.close());
    };
    armIdle();
    session.on('stream', (stream) => {
      open++;
      cancel(idle);
      idle = undefined;
      stream.once('close', () => {
        if (--open === 0 && usable()) armIdle();
      });
    });

    if (keepaliveTimeMs > 0) {
      const pinger = setInterval(() => {
        if (!usable()) return;
        const unanswered = after(keepaliveTimeoutMs, () => {
          this.logger.debug('HTTP port: closed an HTTP/2 connection that did not answer a ping');
          socket.destroy();
        });
        try {
          if (!session.ping(() => cancel(unanswered))) cancel(unanswered);
        } catch {
          cancel(unanswered); // the session is going away
        }
      }, keepaliveTimeMs).unref();
      session.once('close', () => clearInterval(pinger));
    }

    if (maxConnectionAgeMs > 0) {
      // ±10%, as grpc-js, so connections made together do not all go away together.
      after(maxConnectionAgeMs * (0.9 + Math.random() * 0.2), () => {
        if (!usable()) return;
        session.close(); // GOAWAY: no new calls; the session ends once the calls in flight have
        after(maxConnectionAgeGraceMs, () => socket.destroy());
      });
    }

    session.once('close', () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    });
  }

  /** At shutdown: the deadlines still running. */
  close(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}
