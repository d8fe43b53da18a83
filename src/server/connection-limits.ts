/**
 * What one client may hold of the server, so idle, half-open or greedy
 * connections cannot wear it down. grpc-js enforces part of it given server
 * options (keepalive pings and their timeout, idle and age limits with a
 * grace for calls in flight, streams per connection); the rest is a TCP
 * listener of ours in front of grpc-js's HTTP/2 server (a connection
 * injector), which refuses connections past the cap and hands a connection
 * over only once the client has sent the HTTP/2 connection preface. With TLS
 * the preface is encrypted: the deadline then bounds the TLS handshake (in
 * the TLS server), and a client silent after it is ended by the keepalive.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { type Server, ServerCredentials, type ServerOptions } from '@grpc/grpc-js';
import { clientKey } from '../auth/failure-limiter';
import type { Logger } from '../logger';

export interface ConnectionLimits {
  /** A new connection must send the HTTP/2 connection preface (with TLS: finish the TLS handshake) within this. */
  handshakeTimeoutMs: number;
  /** The server pings a connection this often (0: never)... */
  keepaliveTimeMs: number;
  /** ...and closes it if a ping is not answered within this. */
  keepaliveTimeoutMs: number;
  /** A connection with no call for this long is closed (GOAWAY; clients reconnect when needed). 0: never. */
  maxConnectionIdleMs: number;
  /** A connection is asked to go away after about this long (±10%). 0: never. */
  maxConnectionAgeMs: number;
  /** ...and closed this long after that, ending the calls still open (streams). */
  maxConnectionAgeGraceMs: number;
  /** Calls open at once on one connection; a client asking for more is refused them (REFUSED_STREAM) or closed. */
  maxConcurrentStreams: number;
  /** Of those, health Watch and reflection streams (open-stream-quota.ts); 0: no cap of their own. */
  maxHealthStreamsPerConnection: number;
  /** Connections open at once; a connection past this is closed at once. */
  maxConnections: number;
  /** Connections open at once from one client address (IPv6: one /64); one past it is closed at once. 0: no cap of its own. */
  maxConnectionsPerAddress: number;
}

/** The HTTP/2 client connection preface, and the frame header of the SETTINGS frame that must follow it. */
const PREFACE_BYTES = 24 + 9;
/** A refused connection is logged at most this often (with how many were refused since). */
export const REFUSAL_LOG_EVERY_MS = 10_000;

/** The grpc-js server options for the limits grpc-js enforces itself. */
export function grpcConnectionOptions(limits: ConnectionLimits): ServerOptions {
  const options: ServerOptions = {
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.max_connection_age_grace_ms': limits.maxConnectionAgeGraceMs,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
  };
  // Absent means "never" to grpc-js; 0 would mean "at once".
  if (limits.keepaliveTimeMs > 0) options['grpc.keepalive_time_ms'] = limits.keepaliveTimeMs;
  if (limits.maxConnectionIdleMs > 0) options['grpc.max_connection_idle_ms'] = limits.maxConnectionIdleMs;
  if (limits.maxConnectionAgeMs > 0) options['grpc.max_connection_age_ms'] = limits.maxConnectionAgeMs;
  return options;
}

export interface LimitedListener {
  port: number;
  /** Stops accepting and closes the connections still in their handshake (grpc-js's shutdown ends the rest). */
  close(): void;
}

/**
 * Listens on host:port (every address a host name resolves to, as grpc-js's
 * bindAsync does: "localhost" is 127.0.0.1 and ::1) and hands grpc-js, with
 * `credentials`, every connection the limits let through.
 */
export async function listenWithLimits(
  server: Server,
  credentials: ServerCredentials,
  address: string,
  limits: ConnectionLimits,
  logger: Logger,
  /** Called with the credentials grpc-js was given, right after it made its HTTP/2 server and before any connection reaches it. */
  onHttp2Server?: (credentials: ServerCredentials) => void,
): Promise<LimitedListener> {
  const secure = credentials._isSecure();
  const injected = secure ? new TlsHandshakeDeadline(credentials, limits.handshakeTimeoutMs) : credentials;
  const injector = server.createConnectionInjector(injected);
  onHttp2Server?.(injected);
  const inHandshake = new Set<net.Socket>();
  const admit = connectionCap(limits, logger, '');
  const accept = (socket: net.Socket): void => {
    if (!admit(socket)) return;
    if (secure) return injector.injectConnection(socket);
    inHandshake.add(socket);
    awaitPreface(socket, limits.handshakeTimeoutMs, (received) => {
      inHandshake.delete(socket);
      if (received) return injector.injectConnection(socket);
      logger.debug({ peer: peerOf(socket) }, 'closed a connection that sent no HTTP/2 preface in time');
      socket.destroy();
    });
  };

  const { host, port } = splitHostPort(address);
  const listeners: net.Server[] = [];
  let boundPort = port;
  const errors: Error[] = [];
  for (const { address: ip } of await dns.lookup(host, { all: true })) {
    const listener = net.createServer(accept);
    try {
      // Port 0 picks a port on the first address; the others take the same one.
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen({ host: ip, port: boundPort }, () => {
          listener.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      errors.push(err as Error);
      continue;
    }
    boundPort = (listener.address() as net.AddressInfo).port;
    // From now on an error (e.g. EMFILE while accepting) is one connection's, not the server's.
    listener.on('error', (err) => logger.warn({ err }, 'could not accept a connection'));
    listeners.push(listener);
  }
  if (listeners.length === 0) throw errors[0];
  for (const err of errors) logger.warn({ err, address }, `listening on only some of the addresses of ${host}`);
  return {
    port: boundPort,
    close: () => {
      for (const listener of listeners) listener.close();
      for (const socket of inHandshake) socket.destroy();
    },
  };
}

/**
 * A port's count of open connections, in all and from each client address
 * (IPv6: each /64, as the auth failure limit counts them, since one host
 * usually has a whole /64): admit(socket) is false, and the socket closed,
 * when its address already has `maxConnectionsPerAddress` open (0: no such
 * cap), or `maxConnections` are open. So one client cannot take every slot
 * and lock the others out. Refusals are logged at most every 10 s per
 * address, and for the whole port, with how many there were (`prefix`
 * starts the line). An admitted socket is counted until it closes. Either
 * way a reset on the socket, before or after a server takes it over, must
 * never end the process.
 */
export function connectionCap(
  { maxConnections, maxConnectionsPerAddress }: Pick<ConnectionLimits, 'maxConnections' | 'maxConnectionsPerAddress'>,
  logger: Logger,
  prefix: string,
): (socket: net.Socket) => boolean {
  let open = 0;
  /** Addresses with a connection open, and how many. */
  const openFrom = new Map<string, number>();
  const full = new RefusalLog((refused) =>
    logger.warn({ maxConnections, refused }, `${prefix}refused ${refused} connection(s): ${maxConnections} are open`),
  );
  const fullFrom = new RefusalLogs((address, refused) =>
    logger.warn(
      { address, maxConnectionsPerAddress, refused },
      `${prefix}refused ${refused} connection(s) from ${address}: ${maxConnectionsPerAddress} are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)`,
    ),
  );
  return (socket) => {
    socket.on('error', () => undefined);
    // Node forgets the address of a socket its peer already closed: nothing to count.
    if (socket.remoteAddress === undefined) {
      socket.destroy();
      return false;
    }
    const address = clientKey(peerOf(socket));
    const fromAddress = openFrom.get(address) ?? 0;
    if (maxConnectionsPerAddress > 0 && fromAddress >= maxConnectionsPerAddress) {
      socket.destroy();
      fullFrom.refused(address);
      return false;
    }
    if (open >= maxConnections) {
      socket.destroy();
      full.refused();
      return false;
    }
    open++;
    openFrom.set(address, fromAddress + 1);
    socket.once('close', () => {
      open--;
      const left = (openFrom.get(address) ?? 1) - 1;
      if (left === 0) openFrom.delete(address);
      else openFrom.set(address, left);
    });
    return true;
  };
}

/** A socket's peer as a call's peer reads: "10.0.0.7:5123", "[2001:db8::4]:5123". */
function peerOf(socket: net.Socket): string {
  const host = socket.remoteAddress ?? '';
  return `${net.isIPv6(host) ? `[${host}]` : host}:${socket.remotePort}`;
}

/**
 * Refusals of one kind, said in a line at once and then at most every
 * REFUSAL_LOG_EVERY_MS, with how many there were since the last: those
 * counted meanwhile are said when the interval is over, even if no refusal
 * follows (a burst of a thousand is not left at the "1" of its first line).
 */
export class RefusalLog {
  private unsaid = 0;
  private lastSaidAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly say: (refused: number) => void) {}

  get saidAt(): number {
    return this.lastSaidAt;
  }

  /** Counts a refusal; true if a line was said for it. */
  refused(now = Date.now()): boolean {
    this.unsaid++;
    if (now - this.saidAt >= REFUSAL_LOG_EVERY_MS) {
      this.flush(now);
      return true;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(Date.now()), REFUSAL_LOG_EVERY_MS - (now - this.saidAt));
      // A line still to say never keeps a stopping server alive.
      this.timer.unref();
    }
    return false;
  }

  flush(now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.unsaid === 0) return;
    this.lastSaidAt = now;
    this.say(this.unsaid);
    this.unsaid = 0;
  }
}

/** Addresses a RefusalLogs keeps at most: past it the one said longest ago is said now and forgotten. */
export const REFUSAL_LOG_ADDRESSES = 10_000;

/**
 * A RefusalLog per address. An address is kept only while its last line is
 * recent (the map in the order of those lines, a line said by the timer
 * too): once that is older than the interval, a refusal would be said at
 * once anyway, so it is forgotten (saying the refusals counted since, if
 * any). At most REFUSAL_LOG_ADDRESSES are kept whatever the pace.
 */
export class RefusalLogs {
  private readonly logs = new Map<string, RefusalLog>();

  constructor(
    private readonly say: (address: string, refused: number) => void,
    private readonly maxAddresses = REFUSAL_LOG_ADDRESSES,
  ) {}

  /** Addresses kept now (tests). */
  get size(): number {
    return this.logs.size;
  }

  /** Says every count still waiting for its interval, now (at shutdown: none is lost), and forgets every address. */
  flushAll(): void {
    const now = Date.now();
    for (const log of [...this.logs.values()]) log.flush(now);
    this.logs.clear();
  }

  refused(address: string): void {
    const now = Date.now();
    for (const [other, log] of this.logs) {
      if (now - log.saidAt < REFUSAL_LOG_EVERY_MS && this.logs.size <= this.maxAddresses) break;
      if (other === address) continue; // said just below, with this refusal
      log.flush(now);
      this.logs.delete(other);
    }
    let log = this.logs.get(address);
    if (log === undefined) {
      const kept: RefusalLog = new RefusalLog((refused) => {
        this.say(address, refused);
        // Each line moves its address to the end: the map stays in the order of the lines, the oldest first.
        if (this.logs.get(address) === kept) {
          this.logs.delete(address);
          this.logs.set(address, kept);
        }
      });
      log = kept;
      this.logs.set(address, log);
    }
    log.refused(now);
  }
}

/**
 * Reads the first bytes of a plaintext connection until the preface and a
 * frame header are in, then puts them back for the HTTP/2 server (which
 * checks them): done(true). Nothing in time, or the peer gone: done(false).
 */
function awaitPreface(socket: net.Socket, timeoutMs: number, done: (received: boolean) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const finish = (received: boolean): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    socket.pause();
    if (received) socket.unshift(Buffer.concat(chunks));
    done(received);
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= PREFACE_BYTES) finish(true);
  };
  const onClose = (): void => finish(false);
  const timer = setTimeout(() => finish(false), timeoutMs);
  socket.on('data', onData);
  socket.on('close', onClose);
}

function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(colon + 1)) };
}

/**
 * Credentials whose TLS server aborts a handshake not finished within
 * `timeoutMs` (Node's default is 120 s). Everything else, certificate
 * rotation included, is the wrapped credentials' (the same delegation as
 * grpc-js's own credentials with interceptors).
 */
class TlsHandshakeDeadline extends ServerCredentials {
  constructor(
    private readonly inner: ServerCredentials,
    private readonly timeoutMs: number,
  ) {
    super(inner._getConstructorOptions(), inner._getSecureContextOptions() ?? undefined);
  }

  override _isSecure(): boolean {
    return this.inner._isSecure();
  }

  override _getConstructorOptions(): ReturnType<ServerCredentials['_getConstructorOptions']> {
    const options = this.inner._getConstructorOptions();
    return options === null ? null : { ...options, handshakeTimeout: this.timeoutMs };
  }

  override _getSecureContextOptions(): ReturnType<ServerCredentials['_getSecureContextOptions']> {
    return this.inner._getSecureContextOptions();
  }

  override _addWatcher(watcher: Parameters<ServerCredentials['_addWatcher']>[0]): void {
    this.inner._addWatcher(watcher);
  }

  override _removeWatcher(watcher: Parameters<ServerCredentials['_removeWatcher']>[0]): void {
    this.inner._removeWatcher(watcher);
  }

  override _getInterceptors(): ReturnType<ServerCredentials['_getInterceptors']> {
    return this.inner._getInterceptors();
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}
