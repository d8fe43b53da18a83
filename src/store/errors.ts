/**
 * Store errors: each has a stable `code`. The server maps codes to gRPC
 * status codes in one place (src/server/to-status.ts); nothing matches on
 * message text.
 */

export type StoreErrorCode =
  | 'INVALID_KEY'
  | 'TOO_LARGE'
  | 'INVALID_VALUE'
  | 'INVALID_ARGUMENT'
  | 'REVISION_MISMATCH'
  | 'CLOSED'
  | 'CORRUPT'
  | 'LOCKED'
  | 'FAILED'
  | 'COMPACTED'
  | 'WATCH_TOO_SLOW'
  | 'NOT_FOUND'
  | 'LEASE_NOT_FOUND'
  | 'LEASE_PRIVATE'
  | 'UNAVAILABLE'
  | 'CONFLICT'
  | 'NOT_SENT'
  | 'BACKEND_REFUSED'
  | 'NOT_SUPPORTED';

export abstract class StoreError extends Error {
  abstract readonly code: StoreErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * `error` as it is, but for its message, which says first where it arose
 * (`success op 2 on key "k"`): the same class, code and fields, and `error`
 * as its cause. For a transaction's ops, so an error among up to 128 says
 * which op to fix.
 */
export function locatedIn<E extends Error>(error: E, where: string): E {
  const located = Object.create(Object.getPrototypeOf(error) as object) as E;
  Object.assign(located, error);
  Object.defineProperties(located, {
    message: { value: `${where}: ${error.message}`, writable: true, configurable: true },
    cause: { value: error, writable: true, configurable: true },
    stack: { value: error.stack, writable: true, configurable: true },
  });
  return located;
}

/** Where a transaction's op is, as its errors say it. */
export function txnOpWhere(branch: 'success' | 'failure', index: number, op: { type: string; key?: string; prefix?: string }): string {
  return op.type === 'clear'
    ? `${branch} op ${index} on prefix ${JSON.stringify(op.prefix)}`
    : `${branch} op ${index} on key ${JSON.stringify(op.key)}`;
}

/** A key that is empty or not valid UTF-8 text (e.g. a lone surrogate). */
export class InvalidKeyError extends StoreError {
  readonly code = 'INVALID_KEY';
}

/** A key or value over its size limit. */
export class TooLargeError extends StoreError {
  readonly code = 'TOO_LARGE';
  constructor(
    /** 'patched': the value an Update would store, its patch applied (the patch itself may be small). */
    readonly what: 'key' | 'value' | 'patch' | 'patched',
    readonly size: number,
    readonly limit: number,
    key?: string,
  ) {
    super(
      what === 'key'
        ? `key ${quoteStart(key ?? '')} is ${size} bytes (UTF-8); the limit is ${limit} bytes`
        : what === 'patched'
          ? `the value of key ${JSON.stringify(key)} with the patch applied would be ${size} bytes JSON-encoded; the limit is ${limit} bytes`
          : `${what} for key ${JSON.stringify(key)} is ${size} bytes JSON-encoded; the limit is ${limit} bytes`,
    );
  }
}

/** An over-long key, named by its first characters so the message stays one readable line. */
function quoteStart(key: string): string {
  const head = Array.from(key).slice(0, 40).join('');
  return head.length < key.length ? `${JSON.stringify(head).slice(0, -1)}…"` : JSON.stringify(key);
}

/** An option that makes no sense (a negative revision, both a key and a prefix...). */
export class InvalidArgumentError extends StoreError {
  readonly code = 'INVALID_ARGUMENT';
}

/** A value that is not JSON (undefined, a function, NaN, Infinity...). */
export class InvalidValueError extends StoreError {
  readonly code = 'INVALID_VALUE';
}

/** expectedRevision did not match the key's modRevision. */
export class RevisionMismatchError extends StoreError {
  readonly code = 'REVISION_MISMATCH';
  constructor(
    readonly key: string,
    readonly expectedRevision: number,
    /** The key's current modRevision; 0 if it does not exist. */
    readonly currentRevision: number,
  ) {
    super(`revision mismatch for key ${JSON.stringify(key)}: expected ${expectedRevision}, current mod_revision is ${currentRevision}`);
  }
}

/** The store is closing or closed. */
export class StoreClosedError extends StoreError {
  readonly code = 'CLOSED';
}

/** Data on disk is damaged somewhere recovery must not guess about. */
export class CorruptDataError extends StoreError {
  readonly code = 'CORRUPT';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`corrupt data in ${file} at byte offset ${offset}: ${reason}`);
  }
}

/** The data directory is owned by another process. */
export class LockedError extends StoreError {
  readonly code = 'LOCKED';
}

/**
 * The store can no longer write safely: a write or fdatasync of its log
 * failed, so the log's tail is unknown (`retrying`: the store recovers its
 * directory in-process on a backoff and takes writes again once the disk
 * accepts them, see heal.ts), or its owner called fail(), e.g. on losing the
 * directory lock (for good: only a restart clears it). Meanwhile every write
 * gets this error; reads keep working.
 */
export class StoreFailedError extends StoreError {
  readonly code = 'FAILED';
  constructor(
    /** The file (or directory) the failure happened on. */
    readonly file: string,
    cause: Error,
    /** True for an I/O failure the store heals from by itself. */
    readonly retrying = false,
  ) {
    super(
      `the store stopped accepting writes after an I/O error on ${file}: ${cause.message}; ` +
        (retrying ? 'writes resume by themselves once the disk accepts them' : 'restart the server'),
      { cause },
    );
  }
}

/** A watch asked for a start revision older than the history the store keeps. */
export class WatchCompactedError extends StoreError {
  readonly code = 'COMPACTED';
  constructor(
    readonly startRevision: number,
    /** The oldest revision a watch can start at now. */
    readonly oldestRevision: number,
    /** The watch had sent changes and the server was resuming it by itself (the etcd engine, after etcd was unreachable): startRevision is its next revision, not the one the client sent. */
    resumed = false,
  ) {
    super(
      `${resumed ? `the watch lost its stream to the store and could not resume it: revision ${startRevision}, the next it had to send,` : `start_revision ${startRevision}`} is older than the change history kept (oldest revision available: ${oldestRevision}); read the current state again, then watch from the revision it was read at + 1 (of a List in pages, the first page's)`,
    );
  }
}

/**
 * A watcher read so slowly that the changes it still needed left the
 * history window. It was given every change up to resumeRevision - 1, but
 * the window now starts at oldestRevision, past resumeRevision (that is
 * why it was ended): a watch from resumeRevision would fail COMPACTED. Its
 * client reads the state again and watches from there.
 */
export class WatchTooSlowError extends StoreError {
  readonly code = 'WATCH_TOO_SLOW';
  constructor(
    /** The first revision the watcher was not sent. */
    readonly resumeRevision: number,
    /** The oldest revision a watch can start at now (above resumeRevision). */
    readonly oldestRevision: number,
  ) {
    super(
      `the watcher read too slowly: the changes it still needed left the change history kept (the last revision it was sent is ${resumeRevision - 1}; oldest revision available: ${oldestRevision}); read the current state again, then watch from the revision it was read at + 1 (of a List in pages, the first page's)`,
    );
  }
}

/** An update of a key that does not exist (without createIfMissing). */
export class KeyNotFoundError extends StoreError {
  readonly code = 'NOT_FOUND';
  constructor(readonly key: string) {
    super(`key ${JSON.stringify(key)} not found`);
  }
}

/** A lease that does not exist: never granted, expired or revoked. */
export class LeaseNotFoundError extends StoreError {
  readonly code = 'LEASE_NOT_FOUND';
  /** `op`: the set of a transaction that named the lease, said as `success op 2 on key "k": lease ...`. */
  constructor(
    readonly id: number,
    op?: { branch: 'success' | 'failure'; index: number; key: string },
  ) {
    const where = op === undefined ? '' : `${op.branch} op ${op.index} on key ${JSON.stringify(op.key)}: `;
    super(`${where}lease ${id} not found (never granted, expired or revoked)`);
  }
}

/** A set named in `lease` the private lease (made by ttlMs) of another key: only that key uses it. */
export class LeasePrivateError extends StoreError {
  readonly code = 'LEASE_PRIVATE';
  constructor(
    readonly id: number,
    readonly key: string,
  ) {
    super(
      `lease ${id} is the private lease of another key (made by a set with ttl_ms) and cannot be attached to key ${JSON.stringify(key)}; grant a lease with GrantLease to share one between keys`,
    );
  }
}

/**
 * A write met concurrent writes to the keys it read (from other servers on
 * the same backend) on every try until its time ran out. Nothing was
 * applied: trying again is safe.
 */
export class WriteConflictError extends StoreError {
  readonly code = 'CONFLICT';
}

/**
 * The store's backend (an etcd cluster) did not answer in time, has no
 * leader, or refused the frontend. A read may be retried at once; a write
 * may or may not have been applied, so read before writing again.
 */
export class BackendUnavailableError extends StoreError {
  readonly code = 'UNAVAILABLE';
}

/**
 * The call was not passed on to the store's backend (no etcd member could be
 * reached, or the read a write starts with failed): nothing was applied, so
 * it may be tried again, writes included.
 */
export class NotSentError extends StoreError {
  readonly code = 'NOT_SENT';
}

/** An error that says the store cannot take writes now (health then says NOT_SERVING). */
export function failsTheStore(error: unknown): boolean {
  return error instanceof StoreError && (error.code === 'FAILED' || error.code === 'BACKEND_REFUSED');
}

/**
 * The store's backend refused this server itself (etcd: its user, password
 * or role): nothing was applied, and trying
 * again will not help until an operator changes the setup. `writing`: the
 * refused call would have written (a read-only role refuses only those).
 */
export class BackendRefusedError extends StoreError {
  readonly code = 'BACKEND_REFUSED';
  constructor(
    message: string,
    readonly writing: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Data under the store's keyspace that kv did not write (a key that is not UTF-8, a value that is not JSON). */
export class ForeignDataError extends StoreError {
  readonly code = 'CORRUPT';
}

/** The engine cannot do what was asked (a backup on the etcd engine); the message says what to use instead. */
export class NotSupportedError extends StoreError {
  readonly code = 'NOT_SUPPORTED';
}
