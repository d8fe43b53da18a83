import { status, type ServiceError } from '@grpc/grpc-js';
import { ErrorReason, ErrorTrailer, errorReasonFromJSON, errorReasonToJSON, errorTrailerToJSON, type KeepAliveError } from './gen/kv/v1/kv';

/** Reasons the server sends in the kv-reason trailer: the names of kv.v1.ErrorReason. */
export type ServerErrorReason = Exclude<keyof typeof ErrorReason, 'ERROR_REASON_UNSPECIFIED' | 'UNRECOGNIZED'>;

/**
 * Why a call failed, decided from the server's `kv-reason` trailer, or from
 * the status code when the server sent none (a transport failure, a
 * deadline) — never from a server's message text. Two reasons grpc-js gives
 * only in its own words: RESPONSE_TOO_LARGE, and NOT_GRPC from a server that
 * is not a kv-server.
 */
export type KvErrorReason =
  | ServerErrorReason
  /** An answer larger than the client's receive limit (KvClientOptions.maxReceiveMessageBytes): the request may have been carried out. */
  | 'RESPONSE_TOO_LARGE'
  /**
   * A watch (OUT_OF_RANGE) resumed on a server whose store has another
   * history id than the one it followed, or whose revision is below one the
   * watch had already given: not the store it followed (restored from a
   * backup, say), whose revisions are reused for other changes. Read the
   * state again and watch from its revision + 1.
   */
  | 'REVISION_WENT_BACK'
  /**
   * What answered at the address is not a kv-server's gRPC port: a
   * kv-server's --http-listen port says so (UNIMPLEMENTED, kv-reason
   * NOT_GRPC, naming its gRPC port), and anything else that speaks HTTP/2
   * but not gRPC answers in HTTP. The request was not carried out. (An
   * HTTP/1.1-only service fails the connection: UNAVAILABLE.)
   */
  | 'NOT_GRPC'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'DATA_LOSS'
  | 'INTERNAL'
  | 'UNKNOWN';

/** A trailer's name: its kv.v1.ErrorTrailer value's name in lower case with "-" for "_". */
function trailerName(trailer: ErrorTrailer): string {
  return errorTrailerToJSON(trailer).toLowerCase().replaceAll('_', '-');
}

const REASON_TRAILER = trailerName(ErrorTrailer.KV_REASON);
const CURRENT_REVISION_TRAILER = trailerName(ErrorTrailer.KV_CURRENT_REVISION);
const OLDEST_REVISION_TRAILER = trailerName(ErrorTrailer.KV_OLDEST_REVISION);
const RESUME_REVISION_TRAILER = trailerName(ErrorTrailer.KV_RESUME_REVISION);

function serverReason(name: string): ServerErrorReason | undefined {
  const value = errorReasonFromJSON(name);
  return value === ErrorReason.ERROR_REASON_UNSPECIFIED || value === ErrorReason.UNRECOGNIZED ? undefined : (name as ServerErrorReason);
}

const REASONS_FROM_CODE: Partial<Record<status, KvErrorReason>> = {
  [status.NOT_FOUND]: 'NOT_FOUND',
  [status.ABORTED]: 'REVISION_MISMATCH',
  [status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [status.RESOURCE_EXHAUSTED]: 'TOO_LARGE',
  [status.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [status.UNAVAILABLE]: 'UNAVAILABLE',
  [status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [status.CANCELLED]: 'CANCELLED',
  [status.DATA_LOSS]: 'DATA_LOSS',
  [status.INTERNAL]: 'INTERNAL',
};

/** The one error type the SDK throws. */
export class KvError extends Error {
  /** The gRPC status code (see `status` from @grpc/grpc-js). */
  readonly code: status;
  readonly reason: KvErrorReason;
  /** For REVISION_MISMATCH: the key's current mod_revision (0 if it does not exist). */
  readonly currentRevision: number | undefined;
  /** For COMPACTED and WATCH_TOO_SLOW (a watch): the oldest revision a watch can start at now. */
  readonly oldestRevision: number | undefined;
  /** For WATCH_TOO_SLOW: the first revision the watch was not sent (already out of the history: a watch from it is COMPACTED). */
  readonly resumeRevision: number | undefined;

  constructor(
    message: string,
    code: status,
    reason: KvErrorReason,
    currentRevision?: number,
    cause?: unknown,
    revisions: { oldestRevision?: number; resumeRevision?: number } = {},
  ) {
    super(message, { cause });
    this.name = 'KvError';
    this.code = code;
    this.reason = reason;
    this.currentRevision = currentRevision;
    this.oldestRevision = revisions.oldestRevision;
    this.resumeRevision = revisions.resumeRevision;
  }

  /** The server's refusal of one lease in a KeepAlive answer, which it gives as the status of a failed call would be. */
  static fromKeepAliveError(error: KeepAliveError): KvError {
    const reason = serverReason(errorReasonToJSON(error.reason)) ?? REASONS_FROM_CODE[error.code as status] ?? 'UNKNOWN';
    return new KvError(error.message, error.code, reason);
  }

  /**
   * Normalises whatever a call threw into a KvError. `receiveLimitBytes`:
   * the client's receive limit, so that an answer over it is told apart
   * from a request the server refused as too large. `call`: what kind of
   * call it was, for what such an answer says: a write's (Set, Txn, ...)
   * that the write may have been applied; a read's (Get, List) to ask for
   * less; a stream's (Watch, Backup), whose messages are as large as the
   * values they carry, only to raise the limit.
   */
  static from(error: unknown, receiveLimitBytes?: number, call: CallKind = 'write'): KvError {
    if (error instanceof KvError) return error;
    if (!isServiceError(error)) {
      return new KvError(error instanceof Error ? error.message : String(error), status.UNKNOWN, 'UNKNOWN', undefined, error);
    }
    if (error.code === status.INTERNAL && STREAM_RESET.test(error.details ?? '')) {
      // A transport failure, not the server's answer: the server's process stopped or was killed mid-call (a --workers
      // worker, a forced stop). As UNAVAILABLE: a read may be tried again; a write may have been applied.
      return new KvError(
        `the server ended the call without a gRPC status, as when its process stops or is killed mid-call (${error.details})`,
        status.UNAVAILABLE,
        'UNAVAILABLE',
        undefined,
        error,
      );
    }
    const [sent] = error.metadata?.get(REASON_TRAILER) ?? [];
    const tooLarge = sent === undefined ? answerTooLarge(error, receiveLimitBytes, call) : undefined;
    if (tooLarge !== undefined) return new KvError(tooLarge, error.code, 'RESPONSE_TOO_LARGE', undefined, error);
    // grpc-js's status for an HTTP answer without gRPC's headers (its code follows the HTTP status): no kv-server sent it.
    const notGrpc = sent === undefined && HTTP_ANSWER.test(error.details ?? '');
    const reason = notGrpc
      ? 'NOT_GRPC'
      : ((typeof sent === 'string' ? serverReason(sent) : undefined) ?? REASONS_FROM_CODE[error.code] ?? 'UNKNOWN');
    const revisionIn = (name: string): number | undefined => {
      const [value] = error.metadata?.get(name) ?? [];
      return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
    };
    return new KvError(plainDetails(error.details || error.message), error.code, reason, revisionIn(CURRENT_REVISION_TRAILER), error, {
      oldestRevision: revisionIn(OLDEST_REVISION_TRAILER),
      resumeRevision: revisionIn(RESUME_REVISION_TRAILER),
    });
  }
}

/** What kind of call failed, for what an answer over the receive limit says (KvError.from). */
export type CallKind = 'write' | 'read' | 'stream';

/** How each kind of call can ask for a smaller answer. A stream cannot: its server fills each message as it sees fit. */
const ASK_FOR_LESS: Record<CallKind, string> = {
  write: ', or ask for less (fewer ops)',
  read: ', or ask for less (a smaller pageSize, a narrower range)',
  stream: ' (a Watch or Backup message holds about 1 MiB of entries, or one larger entry whole)',
};

/** The same error, its message followed by `note` in brackets (what the client did before giving it up). */
export function withNote(error: KvError, note: string): KvError {
  const { code, reason, currentRevision, cause, oldestRevision, resumeRevision } = error;
  return new KvError(`${error.message} (${note})`, code, reason, currentRevision, cause, { oldestRevision, resumeRevision });
}

/** grpc-js's details (with INTERNAL) for a stream the server reset without a gRPC status. */
const STREAM_RESET = /^Received RST_STREAM with code \d+/;

/** grpc-js's details when what answered spoke HTTP without gRPC's headers. */
const HTTP_ANSWER = /^Received HTTP status code (\d+)$/;

/**
 * grpc-js's own words for a failed connection, made readable: "No connection
 * established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1.
 * Resolution note: " becomes "no connection: connect ECONNREFUSED
 * 127.0.0.1:1" (see plainConnectionError for TLS), a deadline loses
 * grpc-js's internal timings ("Deadline exceeded after 9.984s,name
 * resolution: 0.053s,...,Waiting for LB pick" becomes "deadline exceeded
 * after 9.984 s: no connection to the server was made ..."), and an HTTP
 * answer that is not gRPC says what it likely is. A server's own message
 * passes as it is.
 */
function plainDetails(details: string): string {
  const noConnection = /^No connection established\. Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(details);
  if (noConnection !== null) {
    // "null": a connection shared with another client of the same address failed, and grpc-js kept no error for this one.
    if (noConnection[1] === 'null' || noConnection[1] === '') {
      return 'no connection: the last attempt to connect to the server failed (it is retried in the background)';
    }
    return `no connection: ${plainConnectionError(noConnection[1])}`;
  }
  const deadline = /^Deadline exceeded after ([\d.]+)s,/.exec(details);
  if (deadline !== null) {
    // The rest is grpc-js's internal timings; "Waiting for LB pick" means the call never reached a server.
    const where = details.includes('Waiting for LB pick')
      ? ': no connection to the server was made (nothing answered at the address, a server there took the connection but did not answer (stopped, or too busy), or what answered does not speak gRPC)'
      : '';
    return `deadline exceeded after ${deadline[1]} s${where}`;
  }
  const http = HTTP_ANSWER.exec(details);
  if (http !== null) {
    return `the server answered HTTP ${http[1]}, not gRPC (a kv-server's --http-listen port speaks Connect and gRPC-Web; gRPC is on its --listen port)`;
  }
  return details;
}

/**
 * What "Failed to connect" most often means. The client cannot tell which:
 * the server closes the connection without a word in both cases.
 */
const FAILED_TO_CONNECT_HINT =
  " (the server closed the connection as it was set up: a server that requires TLS, reached without it? or, over TLS, one that does not accept this client's certificate?)";

/**
 * Why a connection failed, on one line. grpc-js passes on OpenSSL's error
 * queue ("800C…:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert
 * certificate required:../deps/openssl/…:1601:SSL alert number 116" and a
 * newline) and ends some messages with a timestamp: the queue becomes
 * "TLS: <its reason>", the timestamp goes. The two a person meets most are
 * said with what to do: a server that wants a client certificate (mutual
 * TLS), and TLS spoken to a port that answers in plaintext. (kvctl says
 * these in its own words, recognising "alert certificate required" and
 * "wrong version number": both stay in the text.)
 */
function plainConnectionError(text: string): string {
  const plain = text
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:\n]*:([^:\n]+):[^\n]*/g, 'TLS: $1')
    .replace(/\s+/g, ' ')
    .trim();
  const alert = /\b(?:tlsv1\d )?alert certificate required\b/.exec(plain);
  if (alert !== null) {
    return (
      `the server requires a client certificate (mutual TLS; its TLS handshake ended with "${alert[0]}"): ` +
      "give this client's key and certificate: credentials.createSsl(rootCert, key, cert)"
    );
  }
  if (/\bwrong version number\b/.test(plain)) {
    return `${plain} (the server does not speak TLS: check the port, or leave out credentials)`;
  }
  // grpc-js's words for a connection closed before HTTP/2 began, with no error: a TLS handshake the other side gave up.
  // A server that refuses a client certificate closes it so too, and the client may then read a reset instead.
  if (plain === 'Failed to connect' || plain === 'read ECONNRESET') return `${plain}${FAILED_TO_CONNECT_HINT}`;
  return plain;
}

/**
 * What to tell of an answer grpc-js refused for being over this client's
 * receive limit, or undefined if `error` is not that. grpc-js marks it only
 * by its words ("Received message larger than max (N vs LIMIT)", which a
 * server also sends of a request over its own limit): it is ours if it has
 * no kv-reason and names our limit.
 */
function answerTooLarge(error: ServiceError, receiveLimitBytes: number | undefined, call: CallKind): string | undefined {
  if (error.code !== status.RESOURCE_EXHAUSTED || receiveLimitBytes === undefined) return undefined;
  const sizes = /^Received message larger than max \((\d+) vs (\d+)\)$/.exec(error.details);
  if (sizes === null || Number(sizes[2]) !== receiveLimitBytes) return undefined;
  return (
    `the answer (${sizes[1]} bytes) is larger than this client's receive limit (${receiveLimitBytes} bytes): ` +
    (call === 'write' ? 'the server carried out the call, and a write (a Txn, an Update) may have been applied; ' : '') +
    'raise the limit with the KvClient option maxReceiveMessageBytes' +
    ASK_FOR_LESS[call]
  );
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' && 'metadata' in error;
}
