/**
 * A line for each TLS handshake a port refuses (mutual TLS without a
 * client certificate, with an expired, not yet valid or foreign one; a
 * plaintext client on a TLS port), so an operator can tell why a client
 * gets no connection: the port, the client's address and the reason. A
 * client that retries cannot flood the log: a port says its first refusal
 * at once, then at most one line per interval with how many were refused
 * since, by reason and address (as connection-limits.ts says refused
 * connections). A client that hangs up or stays silent during the
 * handshake is no refusal: a debug line (TCP health checks do that).
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../logger';
import { REFUSAL_LOG_EVERY_MS, RefusalLog } from './connection-limits';

export type TlsPort = 'grpc' | 'http';

/** At most one line per port this often, as connection-limits.ts's REFUSAL_LOG_EVERY_MS. */
export const TLS_REFUSAL_LOG_EVERY_MS = REFUSAL_LOG_EVERY_MS;
/** Client addresses named in a line that sums up refusals; refusals from others are only counted. */
const ADDRESSES_NAMED = 10;

const PORT_NAME: Record<TlsPort, string> = { grpc: 'gRPC port', http: 'HTTP port' };

/** Node's verification codes (socket.authorizationError) for a client certificate the CA file does not vouch for. */
const UNTRUSTED_CA = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

/** Node's codes for bytes that are not a TLS record: a client speaking plaintext (HTTP/2, HTTP/1.1, ...). */
const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_HTTPS_PROXY_REQUEST',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LAYER_FAILURE',
]);

/**
 * Why a handshake failed, in plain words; undefined when the server did not
 * refuse it (the client hung up, or said nothing in time).
 */
function refusalReason(error: NodeJS.ErrnoException & { reason?: string }, authorizationError: string | null): string | undefined {
  if (authorizationError !== null) {
    if (authorizationError === 'CERT_HAS_EXPIRED') return 'client certificate expired';
    if (authorizationError === 'CERT_NOT_YET_VALID') return 'client certificate not yet valid';
    if (UNTRUSTED_CA.has(authorizationError)) return 'client certificate from an untrusted CA';
    return `client certificate refused (${authorizationError})`;
  }
  const code = error.code ?? '';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no client certificate';
  if (NOT_TLS.has(code)) return 'not TLS (plaintext client?)';
  // The client's own alert: most often it does not trust the server's certificate (unknown CA, bad certificate).
  if (/^ERR_SSL_(TLSV1|SSLV3)_ALERT_/.test(code)) return `the client ended the handshake (TLS alert: ${error.reason ?? code})`;
  if (code.startsWith('ERR_SSL_')) return code;
  return undefined;
}

/** Logs the TLS handshakes `server` refuses (see the top of this file). Call before it takes connections. */
export function logTlsRefusals(server: tls.Server, port: TlsPort, logger: Logger): void {
  const log = new TlsRefusalLog(port, logger);
  // Node forgets a socket's address once a refusal has closed it: it is noted as the connection comes.
  const peers = new WeakMap<net.Socket, string>();
  server.on('connection', (socket: net.Socket) => {
    if (socket.remoteAddress !== undefined) peers.set(socket, peerOf(socket));
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // A TLS server's socket wraps the connection it was given (Node's _parent).
    const connection = (socket as unknown as { _parent?: net.Socket })._parent;
    const peer = (connection && peers.get(connection)) ?? (socket.remoteAddress === undefined ? 'unknown' : peerOf(socket));
    // A verification code ("CERT_HAS_EXPIRED") at run time, whatever Node's typings say; null when none.
    const authorizationError = socket.authorizationError as unknown as string | null | undefined;
    const reason = refusalReason(error, authorizationError ?? null);
    if (reason !== undefined) return log.refused(peer, reason);
    const what =
      error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'not finished within --handshake-timeout-ms' : 'the client closed the connection';
    logger.debug({ port, peer, code: error.code }, `${PORT_NAME[port]}: a TLS handshake from ${peer} ended: ${what}`);
  });
  // What is still to say when the port closes is said then.
  server.once('close', () => log.flush(Date.now()));
}

/** A socket's peer as a call's peer reads: "10.0.0.7:5123", "[2001:db8::4]:5123". */
function peerOf(socket: net.Socket): string {
  const host = socket.remoteAddress ?? '';
  return `${net.isIPv6(host) ? `[${host}]` : host}:${socket.remotePort}`;
}

/** "10.0.0.7:5123" → "10.0.0.7", "[2001:db8::4]:5123" → "2001:db8::4". */
function hostOf(peer: string): string {
  return peer.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}

/**
 * One port's refusals: the first said at once, then at most one line every
 * TLS_REFUSAL_LOG_EVERY_MS for those counted meanwhile (said when the
 * interval is over, even if no refusal follows): connection-limits.ts's
 * RefusalLog keeps the time, this what to say.
 */
class TlsRefusalLog {
  private readonly reasons = new Map<string, number>();
  private readonly addresses = new Set<string>();
  private fromOthers = 0;
  private last = { peer: '', reason: '' };
  private readonly timing = new RefusalLog((refused) => this.say(refused));

  constructor(
    private readonly port: TlsPort,
    private readonly logger: Logger,
  ) {}

  refused(peer: string, reason: string): void {
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    const host = hostOf(peer);
    if (this.addresses.size < ADDRESSES_NAMED) this.addresses.add(host);
    else if (!this.addresses.has(host)) this.fromOthers++;
    this.last = { peer, reason };
    this.timing.refused();
  }

  flush(now: number): void {
    this.timing.flush(now);
  }

  private say(refused: number): void {
    const port = this.port;
    const name = PORT_NAME[port];
    if (refused === 1) {
      const { peer, reason } = this.last;
      this.logger.warn({ port, peer, reason, refused }, `${name}: refused a TLS handshake from ${peer}: ${reason}`);
    } else {
      const reasons = Object.fromEntries(this.reasons);
      const addresses = [...this.addresses];
      const byReason = [...this.reasons].map(([reason, count]) => `${reason}: ${count}`).join(', ');
      const others = this.fromOthers;
      const from = addresses.join(', ') + (others > 0 ? ` (and ${others} from other addresses)` : '');
      this.logger.warn(
        { port, refused, reasons, addresses, ...(others > 0 && { refusedFromOtherAddresses: others }) },
        `${name}: refused ${refused} TLS handshakes in the last ${TLS_REFUSAL_LOG_EVERY_MS / 1000} s (${byReason}) from ${from}`,
      );
    }
    this.reasons.clear();
    this.addresses.clear();
    this.fromOthers = 0;
  }
}
