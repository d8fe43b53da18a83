/**
 * The etcd3 client as kv uses it: every endpoint of the cluster, TLS and
 * user/password if given, a deadline on every unary call, and no blind
 * retries. etcd3 retries failed calls by default; a write retried after its
 * answer was lost could apply twice, so here nothing is retried by the
 * client: reads are retried by the store (readWithRetry), writes never.
 * A member that keeps failing is skipped for a while (etcd3's per-host
 * circuit breaker), so calls go to the members that answer; a call refused
 * for its size is not the member failing.
 */
import net from 'node:net';
import tls, { rootCertificates } from 'node:tls';
import {
  circuitBreaker,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  isBrokenCircuitError,
  noop,
} from 'cockatiel';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import {
  callTimeSpent,
  type EtcdCallKind,
  fromEtcdError,
  isOverSize,
  isTransient,
  MEMBER_ON_TRIAL,
  MemberSkippedError,
  neverSent,
} from './etcd-errors';

export interface EtcdConnectionOptions {
  /** Client URLs of the members: http://host:port or https://host:port. */
  endpoints: string[];
  /** PEM: the CA that signed etcd's certificates (default: the system's), and a client certificate for etcd's --client-cert-auth. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** etcd's own authentication (etcdctl user add / role grant-permission). */
  auth?: { username: string; password: string };
  /** Deadline of one etcd call; past it the call fails as unavailable (a read is retried within it: readWithRetry). Default 5000 ms. */
  callTimeoutMs?: number;
}

export const DEFAULT_CALL_TIMEOUT_MS = 5000;

export function connectEtcd(options: EtcdConnectionOptions): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const tls = options.tls;
  const etcdOptions: IOptions = {
    hosts: options.endpoints,
    faultHandling: {
      global: noop,
      // etcd3's own breaker (3 failures in a row skip a member for 5 s), but not for a request refused for its size: the member
      // answered, and a client sending too much at once would otherwise take it out of service for every other call.
      host: () =>
        withoutWaitingOnTrial(circuitBreaker(handleWhen(countsAgainstMember), { halfOpenAfter: 5000, breaker: new ConsecutiveBreaker(3) })),
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    grpcOptions: {
      // A Clear of many keys arrives as one watch response; kv bounds it, not the channel.
      'grpc.max_receive_message_length': -1,
      // Find a member that vanished without closing the connection (a cut network, a frozen host).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // No service config from DNS (TXT records): one could turn on grpc-js's retries or hedging, and a write must not
      // be sent twice, nor a call that may have reached etcd be taken for one that never left (etcd-errors.ts neverSent).
      'grpc.service_config_disable_resolution': 1,
    },
  };
  if (tls !== undefined && (tls.ca !== undefined || tls.cert !== undefined)) {
    etcdOptions.credentials = {
      rootCertificate: tls.ca ?? Buffer.from(rootCertificates.join('\n')),
      privateKey: tls.key,
      certChain: tls.cert,
    };
  }
  if (options.auth !== undefined) etcdOptions.auth = options.auth;
  return new Etcd3(etcdOptions);
}

/** The failures a member's breaker counts: those another try can get past, but not a request refused for its size. */
function countsAgainstMember(error: Error): boolean {
  return isRecoverableError(error) && !isOverSize(error);
}

/**
 * A member's breaker that, while one call tries the member again (half
 * open), skips it for every other call (BrokenCircuitError: etcd3 goes to
 * the next member, readWithRetry tries again later) instead of making them
 * wait for that trial, as cockatiel does. Waiting deadlocked: a call that
 * meets "invalid auth token" (etcd restarted, its tokens gone) authenticates
 * and calls again from inside its own trial, and that call waited on the
 * trial, and every later call on both, for good (no gRPC call was made, so
 * no deadline ended it).
 *
 * A call it skips the member for gets the member's last counted failure
 * with it (MemberSkippedError): a call that only ever met open circuits
 * would otherwise say nothing of why (etcd refusing kv's client certificate
 * since it expired read as "no etcd endpoint answers right now"). Only the
 * breaker's own refusals are wrapped: a circuit-open error from a call made
 * inside the call (etcd3 calls again after "invalid auth token") is that
 * call's, and stays as it is. A success forgets the failure.
 */
export function withoutWaitingOnTrial(
  breaker: CircuitBreakerPolicy,
  counts: (error: Error) => boolean = countsAgainstMember,
): CircuitBreakerPolicy {
  const execute = breaker.execute.bind(breaker);
  let lastFailure: unknown;
  breaker.execute = async (fn, signal) => {
    if (breaker.state === CircuitState.HalfOpen) throw new MemberSkippedError(MEMBER_ON_TRIAL, lastFailure);
    let ran = false;
    try {
      const result = await execute((context) => {
        ran = true;
        return fn(context);
      }, signal);
      lastFailure = undefined;
      return result;
    } catch (error) {
      if (!ran && isBrokenCircuitError(error)) throw new MemberSkippedError(error.message, lastFailure);
      if (ran && error instanceof Error && counts(error)) lastFailure = error;
      throw error;
    }
  };
  return breaker;
}

/** The part of --etcd-timeout-ms one try of a read may take: a quarter (1,250 ms of the default 5 s). */
const ATTEMPT_SHARE = 4;

/** The deadline of one try of a read, for a --etcd-timeout-ms of callTimeoutMs. */
export function attemptMsOf(callTimeoutMs: number): number {
  return Math.ceil(callTimeoutMs / ATTEMPT_SHARE);
}

/** The deadline of one try, as etcd3 and grpc-js take it (a call's options override the connection's default). */
export interface AttemptOptions {
  deadline: number;
}

/**
 * Runs a read, trying again (soon, then less soon) while etcd is briefly
 * unavailable — a member died, or the cluster is electing a leader — for up
 * to budgetMs. Reads change nothing, so a retry is always safe.
 *
 * Each try gets its own deadline: attemptMs (by default a quarter of the
 * budget; a read given what is left of a call's time passes a quarter of
 * the whole), or the end of the budget if that is sooner. `read` passes it
 * on to its etcd call. A try that went to a member that hangs (frozen, its
 * network cut, its connection not yet known to be dead) fails then, and
 * the next try goes to a member etcd3 picks again, while the budget lasts.
 * (With one deadline for the whole budget, such a member took all of it:
 * one hung member of a healthy majority failed reads and the health
 * probe.) Three failed tries in a row open that member's circuit
 * (connectEtcd), so from the fourth try on it is skipped: a budget of
 * 1.4 s or more (the default is 5 s) has room for four tries, so one hung
 * member cannot fail a read.
 *
 * Only a member's own slowness may count there. A try is never sent once
 * the budget is spent (a call that waited its turn in a key's queue until
 * its time was up), and it is never given a deadline shorter than
 * attemptMs: where less of the budget is left, the caller stops waiting
 * then, and the try runs on to its own deadline, unheard. Either way, a try
 * failing for want of its caller's time would count against a healthy
 * member: a burst of calls with short deadlines opened every member's
 * circuit, and every other call through the frontend failed for 5 s.
 */
export async function readWithRetry<T>(
  read: (attempt: AttemptOptions) => Promise<T>,
  budgetMs: number,
  kind: EtcdCallKind = 'read',
  attemptMs = attemptMsOf(budgetMs),
): Promise<T> {
  const deadline = Date.now() + budgetMs;
  // Once every member failed, etcd3 answers "circuit open" without trying: report what the members said instead, and
  // an attempt that reached a member before one that never left (the call was sent: "nothing was sent" would be untrue).
  let reached: unknown;
  let unsent: unknown;
  for (let pause = 50; ; pause = Math.min(pause * 2, 500)) {
    const left = deadline - Date.now();
    if (left <= 0)
      throw reached !== undefined || unsent !== undefined ? fromEtcdError(reached ?? unsent, kind) : callTimeSpent(kind, false);
    try {
      return await withinBudget(read({ deadline: Date.now() + attemptMs }), left, attemptMs, kind);
    } catch (error) {
      if (!neverSent(error)) reached = error;
      else if (!isBrokenCircuitError(error)) unsent = error;
      if (Date.now() + pause > deadline || !isTransient(error)) throw fromEtcdError(reached ?? unsent ?? error, kind);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** `attempt`, unless what is left of the budget (`leftMs`) ends before its own deadline (`attemptMs`): then the caller's time is spent. */
function withinBudget<T>(attempt: Promise<T>, leftMs: number, attemptMs: number, kind: EtcdCallKind): Promise<T> {
  if (leftMs >= attemptMs) return attempt;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(callTimeSpent(kind, true)), leftMs);
    attempt.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Runs a write once: its failure is reported, never retried here (the outcome may be unknown). */
export async function writeOnce<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    throw fromEtcdError(error, 'write');
  }
}

/**
 * Ends a stream kv no longer needs (a keep-alive answered, a watch closed).
 * Half-closed first: etcd3 takes an error on a stream still open for writing
 * (the CANCELLED that cancel() brings) for a failure of the member, counts it
 * in the member's breaker (three in a row skip the member for 5 s) and closes
 * every connection to it, other calls' included.
 */
export function endStream(stream: { end(): void; cancel(): void }): void {
  stream.end();
  stream.cancel();
}

/** What an endpoint was found to speak, against its scheme in --etcd-endpoints (schemeMismatch). */
export type SchemeMismatch = 'plaintext-behind-https' | 'tls-behind-http';

/**
 * Whether an endpoint speaks other than its scheme says: an https:// one
 * that answers plain HTTP (an etcd that serves plaintext), or an http:// one
 * that completes a TLS handshake (an etcd that serves TLS). Asked only after
 * a first read failed without a TLS error to say so: such a member closes
 * the connection at once, and Node reports that as a handshake cut short,
 * as ECONNRESET (which a member going down gives too), or as "Failed to
 * connect".
 */
export async function schemeMismatch(endpoints: readonly string[], timeoutMs = 1000): Promise<SchemeMismatch | undefined> {
  const answers = await Promise.all(
    endpoints.map(async (endpoint): Promise<SchemeMismatch | undefined> => {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        return undefined;
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (url.protocol === 'https:') {
        return (await answersPlainHttp(host, Number(url.port || 443), timeoutMs)) ? 'plaintext-behind-https' : undefined;
      }
      if (url.protocol === 'http:') return (await answersTls(host, Number(url.port || 80), timeoutMs)) ? 'tls-behind-http' : undefined;
      return undefined;
    }),
  );
  return answers.find((answer) => answer !== undefined);
}

/**
 * Whether etcd answers /version there in plain HTTP: `{"etcdserver":...}`.
 * Not any HTTP answer: a TLS proxy in front of an etcd that is down (a
 * service mesh's sidecar) may answer plain HTTP itself.
 */
function answersPlainHttp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return probe(net.connect({ host, port }), timeoutMs, (socket, done) => {
    let answer = '';
    const isEtcd = (): boolean => /^HTTP\/1\.[01] 200 /.test(answer) && answer.includes('"etcdserver"');
    socket.on('connect', () => socket.write(`GET /version HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (isEtcd() || answer.length > 4096) done(isEtcd());
    });
    socket.on('end', () => done(isEtcd()));
  });
}

/** Whether a TLS handshake completes there (whatever the certificate: only the protocol is asked). */
function answersTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const servername = net.isIP(host) === 0 ? host : undefined;
  const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername });
  return probe(socket, timeoutMs, (connected, done) => connected.on('secureConnect', () => done(true)));
}

/** The answer `ask` gives on `socket` (false on an error or after timeoutMs); the socket is destroyed once it is known. */
function probe<S extends net.Socket>(
  socket: S,
  timeoutMs: number,
  ask: (socket: S, done: (answer: boolean) => void) => void,
): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    ask(socket, done);
  });
}
