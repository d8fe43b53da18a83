/**
 * What etcd's failures mean to kv, in one place. The etcd3 client turns a
 * gRPC status into an error class by its code; kv maps those classes to
 * store errors, so callers see kv's codes and messages, never a raw etcd
 * error. Message text is read only where etcd gives one code to causes kv
 * must tell apart, and then only fixed texts: etcd's own (its rpctypes) for
 * a deadline etcd reports as UNKNOWN and for which limit an
 * INVALID_ARGUMENT met, grpc-js's for a call it failed before sending
 * it, and gRPC's for a message over a size limit (see overSize). A failed
 * call says whether it was applied: certainly not when the
 * request never left (every member's circuit open, no connection to the
 * member: NotSentError, reason NOT_SENT, which a client may retry, writes
 * included); otherwise a write's outcome is unknown, since the request may
 * have been applied before the answer was lost.
 */
import { BrokenCircuitError, isBrokenCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCFailedPreconditionError,
  GRPCInvalidArgumentError,
  GRPCNotImplementedError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  GRPCUnknownError,
} from 'etcd3';
import type { SchemeMismatch } from './etcd-connection';
import { BackendRefusedError, BackendUnavailableError, InvalidArgumentError, NotSentError, StoreClosedError, StoreError } from '../errors';

export type EtcdCallKind = 'read' | 'write' | 'watch' | 'keep-alive';

const OUTCOME_UNKNOWN = '; the write may or may not have been applied: read the key before writing it again';
/**
 * What a NotSentError adds. A read may be the first step of an Update or a Txn, whose caller must learn that nothing
 * was applied; a watch or a keep-alive applies nothing anyway.
 */
function notSent(kind: EtcdCallKind): string {
  return kind === 'write' || kind === 'read'
    ? '; nothing was sent to etcd, nothing was applied: try again'
    : '; nothing was sent to etcd: try again';
}
const TOO_LARGE =
  "nothing was applied: together the values a write carries must fit etcd's --max-request-bytes (1.5 MiB by default; kv's --etcd-max-request-bytes must not be more than it)";

/** gRPC's largest message (math.MaxInt32): what etcd sends at most, and an etcd grpc-proxy receives from etcd unless its --max-recv-bytes is lower. */
const GRPC_MAX_MESSAGE_BYTES = 2 ** 31 - 1;

/** The text of the circuit-open error a call gets while its member's one trial call runs (etcd-connection.ts). */
export const MEMBER_ON_TRIAL = 'etcd member is being tried again';

/**
 * A call that skipped a member whose circuit is open (or on trial), with
 * the failure that member last met (etcd-connection.ts): once every member
 * is skipped, that failure is the only reason left to tell the caller (a
 * client certificate etcd now refuses, say), since the call's own tries
 * reached no member.
 */
export class MemberSkippedError extends BrokenCircuitError {
  constructor(
    message: string,
    readonly lastFailure: unknown,
  ) {
    super(message);
  }
}

/** Failures where another try (on this member or another) can succeed. */
export function isTransient(error: unknown): boolean {
  return (
    isBrokenCircuitError(error) ||
    error instanceof GRPCUnavailableError ||
    error instanceof GRPCDeadlineExceededError ||
    error instanceof GRPCCancelledError ||
    isContextError(error)
  );
}

/**
 * etcd 3.4 passes a request's own context error (its deadline passed, or it
 * was cancelled) to gRPC as is, which sends it as UNKNOWN: a write to a
 * member that has no leader waits in Raft until then, and its answer can
 * beat the client's own DEADLINE_EXCEEDED.
 */
function isContextError(error: unknown): boolean {
  return error instanceof GRPCUnknownError && /\bcontext (deadline exceeded|canceled)\b/.test(error.message);
}

/**
 * Failures that certainly kept the request in this process: etcd3's circuit
 * breaker refusing without a call (every member failed recently), and
 * grpc-js failing the call at its pick, before any stream was opened:
 * because it has no connection to the member (refused, unreachable, a
 * failed TLS handshake; its fixed text "No connection established"),
 * because the deadline passed while the call still waited for one (a
 * member frozen or cut off, its connection being made again; grpc-js's
 * deadline text then ends "Waiting for LB pick", which it writes only for
 * a call that never got a stream), or because the channel was closed while
 * the call still waited for its pick (etcd3 closes a member's channel when
 * a call on it fails, and the calls queued behind it end so).
 */
export function neverSent(error: unknown): boolean {
  return (
    isBrokenCircuitError(error) ||
    (error instanceof GRPCUnavailableError && error.message.includes('No connection established')) ||
    // grpc-js (1.14, src/internal-channel.ts) writes this only for a call that has no stream yet: its ShutdownPicker drops
    // every call picked once the channel is closed, and close() cancels the calls still in its config-selection and pick
    // queues with it. etcd3's resetAllServices closes a member's channels when a call to it fails in a way it recovers from.
    (error instanceof GRPCUnavailableError && error.message.includes('Channel closed before call started')) ||
    // Its text says only what the last attempt did; "previous attempts" (grpc-js's retries, which kv turns off) may have been sent.
    (error instanceof GRPCDeadlineExceededError &&
      error.message.includes('Waiting for LB pick') &&
      !error.message.includes('previous attempts'))
  );
}

/**
 * Whether a store error says that etcd did not answer (unreachable, no
 * leader, the deadline passed, every member's circuit open), as opposed to
 * an answer that refused the call.
 */
export function isOutage(error: unknown): error is BackendUnavailableError | NotSentError {
  return (
    (error instanceof BackendUnavailableError || error instanceof NotSentError) && error.cause !== undefined && isTransient(error.cause)
  );
}

/**
 * The caller's time ran out (readWithRetry): before a try was sent, so
 * nothing reached etcd, or while one was under way, whose answer is no
 * longer waited for. Neither is a member's failure.
 */
export function callTimeSpent(kind: EtcdCallKind, sent: boolean): StoreError {
  const cause = new GRPCDeadlineExceededError(`the call's time ran out ${sent ? 'while etcd was asked' : 'before etcd was asked'}`);
  return sent
    ? new BackendUnavailableError(`etcd did not answer the ${kind} within the call's time${kind === 'write' ? OUTCOME_UNKNOWN : ''}`, {
        cause,
      })
    : new NotSentError(`the call's time ran out before etcd was asked for the ${kind}${notSent(kind)}`, { cause });
}

/**
 * An outage met by a frontend's first read of etcd (openEtcdStore), said to
 * the operator starting it, not as a call's "try again"; anything else is
 * returned as is.
 */
/** Whether a failure to reach etcd says nothing of TLS: then a probe may find the endpoints' scheme wrong (schemeMismatch). */
export function schemeMayBeWrong(error: unknown): boolean {
  return isOutage(error) && !(error.cause instanceof Error && tlsTrouble(error.cause.message) !== undefined);
}

export function notReachedAtStart(error: unknown, mismatch?: SchemeMismatch): unknown {
  return saidToOperator(error, 'for its first read', "kv's first read", mismatch);
}

/**
 * An outage met by the probe that health follows (EtcdStore.failure), said
 * to the operator who reads the log line health's change writes: what to
 * look at, where a call's own error says "try again".
 */
export function notReachedByProbe(error: unknown): unknown {
  return saidToOperator(error, 'to see whether it answers', "the frontend's probe");
}

/** With `mismatch`: an endpoint was found to speak other than its scheme says (schemeMismatch in etcd-connection.ts). */
function saidToOperator(error: unknown, connectingFor: string, asked: string, mismatch?: SchemeMismatch): unknown {
  if (!isOutage(error)) return error;
  const why = error.cause instanceof Error ? grpcText(error.cause.message) : error.message;
  const tls =
    (error.cause instanceof Error ? tlsTrouble(error.cause.message) : undefined) ??
    (mismatch === 'plaintext-behind-https' ? NO_TLS_THERE_TEXT : mismatch === 'tls-behind-http' ? TLS_THERE_TEXT : undefined);
  const text =
    tls !== undefined
      ? `kv could not connect to etcd ${connectingFor}: ${tls}`
      : `etcd did not answer ${asked} (${why}): check that --etcd-endpoints names members of the cluster, and that a majority of them is up (without a majority etcd has no leader, and answers nothing)`;
  // The same kind of error: NOT_SENT still says nothing reached etcd.
  return error instanceof NotSentError
    ? new NotSentError(text, { cause: error.cause })
    : new BackendUnavailableError(text, { cause: error.cause });
}

/** TLS alerts etcd sends when it refuses the client certificate kv gave (or that kv gave none). */
const CLIENT_CERT_REFUSED =
  /alert (bad certificate|certificate required|unknown ca|certificate expired|certificate revoked|certificate unknown|unsupported certificate)/i;
/** Node's words for a certificate of etcd's that kv does not accept (a name mismatch whole: the name and the certificate's list). */
const SERVER_CERT_REFUSED =
  /unable to verify the first certificate|unable to get (?:local )?issuer certificate|self[- ]signed certificate(?: in certificate chain)?|certificate has expired|certificate is not yet valid|Hostname\/IP does not match certificate's altnames: (?:IP|Host): \S+ is not in the cert's (?:list|altnames): [^()]*?(?=\s*\(|\)|$)/i;

const TLS_THERE_TEXT =
  'an --etcd-endpoints address answered with TLS: an etcd that serves TLS is named https://, not http:// ' +
  "(give --etcd-ca with the CA that signed the members' certificates)";

const NO_TLS_THERE_TEXT =
  'the connection closed before its TLS handshake ended: an etcd that serves plaintext is named http://, not https://, in ' +
  "--etcd-endpoints (or the address is not an etcd member's client port)";

/** Node's words for a TLS connection the other end closed during the handshake: an https:// endpoint that serves plaintext, as a rule. */
const NO_TLS_THERE = /socket disconnected before secure TLS connection was established/i;

/**
 * A connection that failed in its TLS handshake, in words that say which side's certificate to look at (without
 * OpenSSL's source file and error codes); undefined for any other failure.
 */
export function tlsTrouble(text: string): string | undefined {
  const client = CLIENT_CERT_REFUSED.exec(text);
  if (client !== null) {
    return (
      `etcd refused this server's TLS client certificate in the handshake (alert "${client[1].toLowerCase()}"): give --etcd-cert and --etcd-key, ` +
      "a certificate that is current, signed by a CA in etcd's --trusted-ca-file, and meant for client authentication"
    );
  }
  const server = SERVER_CERT_REFUSED.exec(text);
  if (server !== null) {
    return (
      `this server does not accept etcd's certificate (${server[0]}): check that --etcd-ca holds the CA that signed the etcd members' ` +
      'certificates, and that those name the --etcd-endpoints hosts and are current'
    );
  }
  if (NO_TLS_THERE.test(text)) return NO_TLS_THERE_TEXT;
  return undefined;
}

/** How many times a read in pages pinned to one revision starts again when etcd compacts that revision meanwhile. */
export const PINNED_READ_TRIES = 3;

/**
 * A read of several Ranges pinned to the first one's revision (a List in
 * chunks, a Backup), started again from scratch if etcd compacts that
 * revision before the last Range (etcd: "required revision has been
 * compacted"); after PINNED_READ_TRIES, UNAVAILABLE saying so. `what`
 * names the read ("the listing", "the backup").
 */
export async function readPinned<T>(what: string, read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const compacted = error instanceof GRPCOutOfRangeError && /required revision has been compacted/.test(error.message);
      if (!compacted) throw error;
      if (attempt >= PINNED_READ_TRIES) {
        throw new BackendUnavailableError(
          `etcd compacted the revision ${what} was read at before it was read whole, ${attempt} times in a row (etcd's auto-compaction, or etcdctl compact): try again`,
          { cause: error },
        );
      }
    }
  }
}

/** A store error for an etcd failure; anything unknown is returned as is (the server logs it as INTERNAL). */
export function fromEtcdError(error: unknown, kind: EtcdCallKind): unknown {
  if (error instanceof StoreError) return error;
  if (isBrokenCircuitError(error)) {
    const why = error.message === MEMBER_ON_TRIAL ? 'its member failed recently and is being tried again' : 'each failed recently';
    const last = error instanceof MemberSkippedError && error.lastFailure instanceof Error ? error.lastFailure.message : undefined;
    const lastText = last === undefined ? '' : `; the last failure: ${tlsTrouble(last) ?? grpcText(last)}`;
    return new NotSentError(`no etcd endpoint answers right now (${why}${lastText})${notSent(kind)}`, { cause: error });
  }
  if (!(error instanceof Error)) return error;
  if (error instanceof ClientClosedError) return new StoreClosedError('the store is closed', { cause: error });
  if (neverSent(error)) {
    const tls = tlsTrouble(error.message);
    const why = tls === undefined ? `(${grpcText(error.message)})` : `in TLS: ${tls}`;
    return new NotSentError(`could not reach etcd for the ${kind} ${why}${notSent(kind)}`, { cause: error });
  }
  if (isTransient(error)) {
    const outcome = kind === 'write' ? OUTCOME_UNKNOWN : '';
    return new BackendUnavailableError(`etcd did not answer the ${kind} (${grpcText(error.message)})${outcome}`, { cause: error });
  }
  const writing = kind === 'write' || kind === 'keep-alive';
  if (error instanceof EtcdAuthenticationFailedError) {
    return new BackendRefusedError(
      `etcd refused this server's user (${oneLine(error.message)}): check --etcd-username and the password in --etcd-password-file`,
      writing,
      { cause: error },
    );
  }
  if (error instanceof EtcdInvalidAuthTokenError) {
    // etcd forgot the token (restarted, or the token's TTL passed): refused before anything was applied. etcd3
    // authenticates again and repeats a unary call by itself; a call that still meets it can be tried again.
    return new NotSentError(`etcd refused this server's auth token for the ${kind} (${oneLine(error.message)})${notSent(kind)}`, {
      cause: error,
    });
  }
  if (error instanceof EtcdPermissionDeniedError || error instanceof EtcdRoleNotGrantedError || error instanceof GRPCUnauthenticatedError) {
    return new BackendRefusedError(
      `etcd refused this server's ${kind} (${oneLine(error.message)}); nothing was applied: check --etcd-username and the role it has on the --etcd-prefix range`,
      writing,
      { cause: error },
    );
  }
  if (error instanceof GRPCFailedPreconditionError && error.message.includes('authentication is not enabled')) {
    // etcd3 authenticates with --etcd-username before each connection's first call: etcd with its auth off refuses that.
    return new BackendRefusedError(
      `etcd refused this server's user (${oneLine(error.message)}): etcd's authentication is off; leave out --etcd-username and --etcd-password-file, or turn it on (etcdctl auth enable)`,
      writing,
      { cause: error },
    );
  }
  if (error instanceof GRPCInvalidArgumentError && error.message.includes('revision of auth store is old')) {
    // etcd's users or roles changed between its receiving the call and applying it: refused before anything was
    // applied, and checked again against the new ones on another try.
    return new NotSentError(`etcd's users or roles changed as it took the ${kind} (${oneLine(error.message)})${notSent(kind)}`, {
      cause: error,
    });
  }
  if (error instanceof GRPCInvalidArgumentError && error.message.includes('user name is empty')) {
    // etcd with authentication on, asked without a user.
    return new BackendRefusedError(
      `etcd refused this server's ${kind} (${oneLine(error.message)}): its authentication is on; give --etcd-username and --etcd-password-file`,
      writing,
      { cause: error },
    );
  }
  if (error instanceof GRPCNotImplementedError) {
    // A gRPC server that is not etcd (another service's port, or an HTTP/2 proxy answering 404): that address's
    // failure, not the cluster's refusal of this server; nothing was applied, and another member may serve it.
    return new NotSentError(
      `an --etcd-endpoints address answered, but not as an etcd v3 member (${grpcText(error.message)}): check --etcd-endpoints (etcd's client URLs, port 2379 by default)${notSent(kind)}`,
      { cause: error },
    );
  }
  if (error instanceof GRPCInvalidArgumentError) {
    // kv checks its own limits first, so these are etcd's limits on one request, met by a transaction.
    const refused = `etcd refused the ${kind} (${oneLine(error.message)})`;
    // Whichever etcd Txn met it (kv's read of the keys, or its write), it is the transaction that is too large.
    if (isTooManyTxnOps(error)) return tooManyTxnOps(error);
    if (error.message.includes('request is too large')) {
      return new InvalidArgumentError(`${refused}: ${TOO_LARGE}`, { cause: error });
    }
    return new InvalidArgumentError(refused, { cause: error });
  }
  if (error instanceof GRPCResourceExhastedError) {
    const tooLarge = kind === 'read' || kind === 'write' ? overSize(error, kind) : undefined;
    if (tooLarge !== undefined) return tooLarge;
    // etcd's NOSPACE alarm (over --quota-backend-bytes) or too many pending proposals.
    return new BackendUnavailableError(`etcd refused the ${kind} for lack of a resource (${oneLine(error.message)})`, { cause: error });
  }
  return error;
}

/**
 * etcd refused a transaction over its --max-txn-ops, in one short line (etcd's own words, "etcdserver: too many
 * operations in txn request", stay in the cause). etcd does not say its limit; its default is 128. How etcd counts a
 * kv transaction (every key compared or updated once, in kv's read of them before it writes, and each op of a
 * branch) is in docs/scaling.md. `keys`: when etcd refused that read, how many keys it asked for.
 */
export function tooManyTxnOps(cause: Error, keys?: number): InvalidArgumentError {
  const what = keys === undefined ? 'has more operations' : `compares or updates ${keys} keys, more`;
  return new InvalidArgumentError(
    `the transaction ${what} than etcd's --max-txn-ops (128 by default) allows; nothing was applied: use fewer, or raise --max-txn-ops on every etcd member`,
    { cause },
  );
}

/** etcd's refusal of a Txn over its --max-txn-ops (its rpctypes text). */
export function isTooManyTxnOps(error: unknown): boolean {
  return error instanceof GRPCInvalidArgumentError && error.message.includes('too many operations in txn request');
}

/** gRPC's texts for a message over a size limit, receiving or sending it, with its size and the limit (Go's in lower case, grpc-js's capitalized). */
const OVER_SIZE = /\b(received|trying to send) message larger than max \((\d+) vs\. (\d+)\)/i;

/**
 * A call refused for the size of its request or answer: the call's own
 * failure, not the member's (which answered), so it must not count towards
 * taking the member out of service.
 */
export function isOverSize(error: unknown): boolean {
  return error instanceof GRPCResourceExhastedError && OVER_SIZE.test(error.message);
}

/**
 * A read or write that met a gRPC message size limit, by gRPC's fixed texts
 * "received message larger than max (SIZE vs. LIMIT)" (a receiver's limit)
 * and "trying to send message larger than max (SIZE vs. LIMIT)" (a
 * sender's). kv itself limits neither what it sends to etcd nor what it
 * receives from it, so the limit is etcd's or that of an etcd grpc-proxy
 * between them, and which message it stopped decides whether the call was
 * carried out:
 * - "received": etcd refuses a request over its --max-request-bytes plus
 *   512 KiB before reading it, and a grpc-proxy one over 4 MiB (gRPC's
 *   default), so a write was not applied. A read's request is a key or a
 *   range, far below those: what was too large was the answer, stopped by
 *   a grpc-proxy whose --max-recv-bytes is below it. (Lowered below a
 *   write's answer, that limit would make an applied write look refused;
 *   docs/scaling.md says to leave it.)
 * - "trying to send" at gRPC's largest message: etcd's answer, sent once
 *   the request was carried out; a write's outcome is unknown here.
 * - "trying to send" below it: a grpc-proxy's --max-send-bytes (1.5 MiB by
 *   default), which bounds the requests it passes on to etcd: not applied.
 */
function overSize(error: GRPCResourceExhastedError, kind: 'read' | 'write'): StoreError | undefined {
  const found = OVER_SIZE.exec(error.message);
  if (found === null) return undefined;
  const [, said, size, limit] = found;
  const direction = said.toLowerCase();
  const text = oneLine(error.message);
  if (direction === 'trying to send' && Number(limit) < GRPC_MAX_MESSAGE_BYTES) {
    return new InvalidArgumentError(
      `an etcd grpc-proxy between this server and etcd refused to pass the ${kind} on (${text}): it sends etcd requests of at most its --max-send-bytes (1.5 MiB by default; give it etcd's --max-request-bytes plus 512 KiB); ${TOO_LARGE}`,
      { cause: error },
    );
  }
  if (kind === 'write' && direction === 'received') {
    return new InvalidArgumentError(
      `etcd refused the write (${text}): etcd reads a request only up to its --max-request-bytes plus 512 KiB (an etcd grpc-proxy, up to 4 MiB); ${TOO_LARGE}`,
      { cause: error },
    );
  }
  const over =
    Number(limit) >= GRPC_MAX_MESSAGE_BYTES
      ? "gRPC's largest message (2 GiB)"
      : `the ${limit}-byte limit of an etcd grpc-proxy between this server and etcd (its --max-recv-bytes)`;
  const answer = `etcd's answer to the ${kind} (${size} bytes) is over ${over}`;
  if (kind === 'write') return new BackendUnavailableError(`${answer}, so it was lost (${text})${OUTCOME_UNKNOWN}`, { cause: error });
  return new InvalidArgumentError(
    `${answer}, so it cannot reach this server (${text}): ask for less at once (a smaller page_size, fewer gets in one Txn)`,
    { cause: error },
  );
}

/** gRPC messages can span lines (TLS alerts do); kv's messages are one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * grpc-js's words for a failed call, on one line and without what changes
 * from call to call and tells an operator nothing: an empty "Resolution
 * note:" after a connection error, and a deadline's internal timings
 * ("Deadline exceeded after 5.000s,time to current attempt start: 0.001s,LB
 * pick: 0.002s,remote_addr=127.0.0.1:2379" keeps "Deadline exceeded after
 * 5.000s at 127.0.0.1:2379").
 */
function grpcText(text: string): string {
  const line = oneLine(text).replace(/\.? Resolution note:$/, '');
  const deadline = /(Deadline exceeded after [\d.]+s),(.*)$/.exec(line);
  if (deadline === null) return line;
  const member = /\bremote_addr=([^,\s)]+)/.exec(deadline[2])?.[1];
  return `${line.slice(0, deadline.index)}${deadline[1]}${member === undefined ? '' : ` at ${member}`}`;
}
