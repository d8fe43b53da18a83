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
 *
 * Over TLS, Node's HTTP/2 may never see a client go. Once a write to a client
 * that has gone fails (EPIPE), Node's TLS layer completes no later write
 * (TLSWrap keeps the failed one's size), and the HTTP/2 session, which ignores
 * write errors, stops reading the socket while its write is pending: neither
 * the error nor the end of the connection reaches it, and the connection
 * stays open and counted (until a keepalive ping goes unanswered) and holds
 * shutdown for its whole grace period. A client that leaves while it is still
 * sending does this: one whose body was refused before it was read, and cut
 * short (drain-body.ts), or one that resets its stream mid-body. So then, and
 * when a closing session (GOAWAY, sent or received) has no call left (Node
 * ends it once its last frames are written), the client must acknowledge a
 * SETTINGS frame within CLIENT_ANSWER_MS, or its connection is closed.
 */
import type http2 from 'node:http2';
import type net from 'node:net';
import type { Logger } from '../../logger';
import { connectionCap, type ConnectionLimits } from '../connection-limits';

/** Node's keep-alive timeout for an HTTP/1.1 connection between requests. */
const HTTP1_KEEP_ALIVE_MS = 5_000;

/**
 * How long a client has to acknowledge the SETTINGS that checks it is still
 * there: after a cut, at most a stream window (64 KiB) of its body is ahead
 * of its answer.
 */
const CLIENT_ANSWER_MS = 1_000;

export class HttpConnectionLimits {
  /** Connections that have not yet shown they speak HTTP, with their deadline. */
  private readonly pending = new Map<net.Socket, NodeJS.Timeout>();
  /** The open HTTP/2 sessions, each with its check that its client is still there. */
  private readonly sessions = new Map<http2.Http2Session, () => void>();
  /** At shutdown: what sends each HTTP/2 session GOAWAY. */
  private readonly goAways = new Set<() => void>();

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
   * is timing): its SETTINGS in time, then pings, idle and age, and the
   * checks that its client is still there (above). A session that is closed
   * without its peer's help is closed by its socket (a session destroyed
   * before the client's preface left the TLS connection open).
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

    let open = 0;

    // Is the client still there? It must acknowledge a SETTINGS frame (an empty one) in time (RFC 9113, 6.5.3,
    // SETTINGS_TIMEOUT); unlike a PING, this works on a session that is closing too.
    let checking = false;
    // Asked again while a check was out: the client may have gone since, so it is checked once more after.
    let again = false;
    const checkClient = (): void => {
      if (session.destroyed) return;
      if (checking) return void (again = true);
      checking = true;
      const unanswered = after(CLIENT_ANSWER_MS, () => {
        this.logger.debug('HTTP port: closed an HTTP/2 connection whose client did not acknowledge SETTINGS in time (gone)');
        socket.destroy();
      });
      const answered = (): void => {
        checking = false;
        cancel(unanswered);
        if (again) {
          again = false;
          checkClient();
        }
      };
      try {
        session.settings({}, answered);
      } catch {
        answered(); // the session is going away
      }
    };
    this.sessions.set(session, checkClient);

    // Closing (GOAWAY either way) with no call open: Node ends the session once its last frames are written.
    const checkIfEnding = (): void => {
      if (open === 0 && session.closed) checkClient();
    };
    const goAway = (): void => {
      if (usable()) session.close();
      checkIfEnding();
    };
    this.goAways.add(goAway);
    // Node closes the session (session.close()) right after this event, for a GOAWAY without an error.
    session.on('goaway', () => process.nextTick(checkIfEnding));

    // Idle: no call open for maxConnectionIdleMs.
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      if (maxConnectionIdleMs > 0) idle = after(maxConnectionIdleMs, goAway);
    };
    armIdle();
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      open++;
      cancel(idle);
      idle = undefined;
      stream.once('close', () => {
        open--;
        // Reset (by either side) while its client was still sending.
        if (!stream.readableEnded) checkClient();
        if (open === 0 && usable()) armIdle();
        checkIfEnding();
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
        goAway(); // no new calls; the session ends once the calls in flight have
        after(maxConnectionAgeGraceMs, () => socket.destroy());
      });
    }

    session.once('close', () => {
      this.sessions.delete(session);
      this.goAways.delete(goAway);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    });
  }

  /**
   * Checks that the client of an HTTP/2 session is still there, and closes
   * its connection if not (see above): after one of its requests was
   * answered with its body left unread (drain-body.ts).
   */
  checkClient(session: http2.Http2Session): void {
    this.sessions.get(session)?.();
  }

  /** At shutdown: connections yet to send a request close, and every HTTP/2 session gets GOAWAY (its calls in flight may finish). */
  close(): void {
    for (const [socket, timer] of this.pending) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.pending.clear();
    for (const goAway of this.goAways) goAway();
  }
}
