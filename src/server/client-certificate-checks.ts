/**
 * With mutual TLS, a client certificate is checked for as long as its
 * connection is open, not only in the TLS handshake. A connection is closed
 * when its certificate (or a CA certificate it chains through) expires, and
 * when a reload (SIGHUP) changes the client CAs (--tls-client-ca) so that
 * its chain no longer reaches one of them; the others are left alone.
 *
 * Closing ends the connection's open streams (Watch, KeepAlive, Backup)
 * with UNAUTHENTICATED and a one-line reason; then an HTTP/2 connection
 * (the gRPC port's, the HTTP port's HTTP/2) is sent GOAWAY, so no new call
 * comes on it, and is closed once its calls in flight are answered, within
 * CLOSE_GRACE_MS; an HTTP/1.1 one (no GOAWAY) is closed as soon as the
 * ended streams' last bytes are written.
 *
 * The chain is checked again as OpenSSL checks it in the handshake, with
 * Node's X509Certificate: a path from the client's certificate, through the
 * certificates the client sent and those of the CA file, each signed by the
 * next (checkIssued, verify), to a self-issued certificate of the CA file.
 * A certificate of the CA file that is not self-issued is a step on the way,
 * never the end of it (OpenSSL's default: no partial chains).
 */
import { X509Certificate } from 'node:crypto';
import type http2 from 'node:http2';
import type tls from 'node:tls';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from '../logger';
import { MAX_TIMER_MS } from '../max-timer';
import { UnauthenticatedError } from './access';
import { RefusalLog } from './connection-limits';
import { connectionOf, type OpenStreams } from './grpc-call';
import type { TlsPort } from './tls-refusals';

/** How long an HTTP/2 connection closed this way has for its calls in flight (not its streams: those end at once). */
const CLOSE_GRACE_MS = 1000;

/** Certificates a path may have, the client's included (OpenSSL's default depth limit is 100; real chains have 2 to 4). */
const MAX_PATH_LENGTH = 10;

const UNTRUSTED =
  "this connection's client certificate is no longer trusted: the server's client CAs changed; connect again with a certificate from a CA it trusts";

const PORT_NAME: Record<TlsPort, string> = { grpc: 'gRPC port', http: 'HTTP port' };

/** An open connection whose client certificate verified. */
interface CheckedConnection {
  /** As OpenStreams knows it (connectionOf). */
  key: string;
  /** The client's certificate first, then each one the TLS stack found it chained through (its CA's last). */
  chain: X509Certificate[];
  /** The chain's certificates, so that connections with the same chain are checked once per reload. */
  chainId: string;
  /** Closes the transport: GOAWAY and a grace (HTTP/2), or at once (HTTP/1.1), once `streamsEnded` streams' last bytes are written. */
  shut(streamsEnded: number): void;
  expiry?: NodeJS.Timeout;
  closed: boolean;
}

export class ClientCertificateChecks {
  private cas: X509Certificate[];
  private readonly open = new Set<CheckedConnection>();
  /** When the client CAs last changed: a handshake under way then may have been verified against the previous ones. */
  private changedAt = Number.NEGATIVE_INFINITY;
  private readonly expired: RefusalLog;

  constructor(
    clientCa: Buffer,
    private readonly streams: OpenStreams,
    private readonly logger: Logger,
    /** The longest a TLS handshake may take (--handshake-timeout-ms). */
    private readonly handshakeTimeoutMs: number,
  ) {
    this.cas = pemCertificates(clientCa);
    // A line at once, then at most one every 10 s with how many: many clients may share one certificate.
    this.expired = new RefusalLog((closed) =>
      logger.info({ closed }, `closed ${closed} connection(s) whose client certificate (or a CA certificate of its chain) expired`),
    );
  }

  /** Checks the connections of a port's TLS server (grpc-js's HTTP/2 server, or the HTTP port's) whose client certificate verified. */
  watch(server: tls.Server, port: TlsPort): void {
    // An HTTP/2 server makes a connection's session in its own 'secureConnection' listener, which runs before this one.
    let newest: http2.ServerHttp2Session | undefined;
    server.on('session', (session: http2.ServerHttp2Session) => (newest = session));
    server.on('secureConnection', (socket: TLSSocket) => {
      const session = socket.alpnProtocol === 'h2' ? newest : undefined;
      newest = undefined;
      this.add(socket, session, port);
    });
  }

  /** After a reload: the client CAs are `clientCa` now. If they changed, each connection whose chain reaches none of them is closed. */
  rotate(clientCa: Buffer | undefined): void {
    if (clientCa === undefined) return; // mutual TLS cannot be switched off by a reload (tls-credentials.ts)
    const cas = pemCertificates(clientCa);
    if (sameCertificates(cas, this.cas)) return;
    this.cas = cas;
    this.changedAt = Date.now();
    const paths = new Map<string, X509Certificate[] | undefined>();
    let closed = 0;
    for (const connection of [...this.open]) {
      if (!paths.has(connection.chainId)) paths.set(connection.chainId, trustedPath(connection.chain, cas));
      const path = paths.get(connection.chainId);
      if (path !== undefined) {
        this.armExpiry(connection, path);
        continue;
      }
      this.close(connection, UNTRUSTED);
      closed++;
    }
    this.logger.info(
      { closed, kept: this.open.size },
      `the client CAs (--tls-client-ca) changed: closed ${closed} open connection(s) whose client certificate no longer chains to one of them`,
    );
  }

  private add(socket: TLSSocket, session: http2.ServerHttp2Session | undefined, port: TlsPort): void {
    if (!socket.authorized || socket.destroyed || socket.remoteAddress === undefined) return;
    const chain = peerChain(socket);
    if (chain.length === 0) return;
    const connection: CheckedConnection = {
      key: connectionOf(port, `${socket.remoteAddress}:${socket.remotePort}`),
      chain,
      chainId: chain.map((certificate) => certificate.fingerprint256).join(' '),
      shut: session === undefined ? (streamsEnded) => destroyAfter(socket, streamsEnded) : () => goAway(session),
      closed: false,
    };
    this.open.add(connection);
    socket.once('close', () => {
      connection.closed = true;
      this.open.delete(connection);
      clearTimeout(connection.expiry);
    });
    // A handshake that began before the client CAs changed was verified against the previous ones: checked again now.
    const path = Date.now() - this.changedAt <= this.handshakeTimeoutMs ? trustedPath(chain, this.cas) : chain;
    if (path === undefined) {
      this.logger.info(
        { port: PORT_NAME[port] },
        'closed a connection whose handshake was verified against the client CAs a reload had just replaced, and no longer chains to them',
      );
      return this.close(connection, UNTRUSTED);
    }
    this.armExpiry(connection, path);
  }

  /** Closes `connection` once the first certificate of `path` to expire has. */
  private armExpiry(connection: CheckedConnection, path: readonly X509Certificate[]): void {
    clearTimeout(connection.expiry);
    let first = path[0];
    for (const certificate of path) if (notAfter(certificate) < notAfter(first)) first = certificate;
    const at = notAfter(first);
    const arm = (): void => {
      const wait = at - Date.now();
      // OpenSSL takes a certificate as expired from its notAfter second on.
      if (wait <= 0) {
        const whose =
          first === path[0] ? "this connection's client certificate" : "a CA certificate of this connection's client certificate";
        this.close(connection, `${whose} expired at ${new Date(at).toISOString()}; connect again with a valid certificate`);
        this.expired.refused();
        return;
      }
      connection.expiry = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
      // A timer for a connection never keeps a stopping server alive.
      connection.expiry.unref();
    };
    arm();
  }

  private close(connection: CheckedConnection, reason: string): void {
    if (connection.closed) return;
    connection.closed = true;
    this.open.delete(connection);
    clearTimeout(connection.expiry);
    connection.shut(this.streams.endConnection(connection.key, new UnauthenticatedError(reason)));
  }
}

/**
 * Closes an HTTP/1.1 connection: at once if it had no stream open (not a
 * request more is read), else once the ended streams have written their
 * last bytes, which they do within the turn of the event loop.
 */
function destroyAfter(socket: TLSSocket, streamsEnded: number): void {
  if (streamsEnded === 0) socket.destroy();
  else setImmediate(() => socket.destroy());
}

/** GOAWAY: no new call on the session; the calls in flight have CLOSE_GRACE_MS, then the connection is closed. */
function goAway(session: http2.ServerHttp2Session): void {
  if (session.destroyed) return;
  if (!session.closed) session.close();
  const timer = setTimeout(() => session.destroy(), CLOSE_GRACE_MS).unref();
  session.once('close', () => clearTimeout(timer));
}

/**
 * A path from `chain[0]` (the client's certificate) to a self-issued
 * certificate of `cas`, through the rest of `chain` and `cas`, each
 * certificate issued and signed by the next and none valid only from a date
 * to come; undefined if there is none. Expiry is not checked here: the
 * caller closes a connection when the first certificate of the path expires.
 */
export function trustedPath(
  chain: readonly X509Certificate[],
  cas: readonly X509Certificate[],
  now = Date.now(),
): X509Certificate[] | undefined {
  if (chain.length === 0) return undefined;
  const trusted = new Set(cas.map((ca) => ca.fingerprint256));
  const issuers = new Map<string, X509Certificate>();
  for (const certificate of [...cas, ...chain.slice(1)]) {
    if (Date.parse(certificate.validFrom) <= now) issuers.set(certificate.fingerprint256, certificate);
  }
  const extend = (path: X509Certificate[]): X509Certificate[] | undefined => {
    const last = path[path.length - 1];
    if (trusted.has(last.fingerprint256) && last.checkIssued(last)) return path;
    if (path.length >= MAX_PATH_LENGTH) return undefined;
    for (const [fingerprint, issuer] of issuers) {
      if (path.some((certificate) => certificate.fingerprint256 === fingerprint)) continue;
      if (!last.checkIssued(issuer) || !last.verify(issuer.publicKey)) continue;
      const found = extend([...path, issuer]);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return extend([chain[0]]);
}

/** The client's certificate and those the TLS stack chained it through (getPeerCertificate(true)), each once. */
function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  let certificate: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  // A self-issued CA certificate is its own issuerCertificate.
  while (certificate !== undefined && Buffer.isBuffer(certificate.raw) && !seen.has(certificate)) {
    seen.add(certificate);
    chain.push(new X509Certificate(certificate.raw));
    certificate = certificate.issuerCertificate;
  }
  return chain;
}

function notAfter(certificate: X509Certificate): number {
  return Date.parse(certificate.validTo);
}

/** Every certificate in PEM text (the client CA file, checked when it was read). */
function pemCertificates(pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function sameCertificates(a: readonly X509Certificate[], b: readonly X509Certificate[]): boolean {
  const fingerprints = (certificates: readonly X509Certificate[]): string =>
    [...new Set(certificates.map((certificate) => certificate.fingerprint256))].sort().join(' ');
  return fingerprints(a) === fingerprints(b);
}
