/**
 * The contract every storage engine implements (the embedded file engine,
 * later an etcd-backed one). Engines never see protobuf types; the server
 * layer never sees files.
 *
 * Revisions follow etcd: one store-wide counter bumped by every change. A
 * key's createRevision is the revision that created it (since it last did
 * not exist), modRevision the revision of its last change, version the
 * number of writes since creation (1 on create).
 */

import type { StoredEntry } from './change';
import type { JsonText } from './value-rules';

/** Any JSON value: what the store keeps under a key. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface Entry {
  key: string;
  value: JsonValue;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is attached to; 0 if none. */
  lease: number;
}

export interface WriteOptions {
  /**
   * Compare-and-set: the write happens only if the key's modRevision is
   * exactly this (0 = the key must not exist); otherwise RevisionMismatchError.
   */
  expectedRevision?: number;
}

export interface SetOptions extends WriteOptions {
  /** Attach the key to this lease (LeaseNotFoundError if it does not exist). Setting a key without it detaches it. */
  lease?: number;
  /** A private lease of this many ms for the key (not with `lease`). */
  ttlMs?: number;
}

export interface UpdateOptions extends WriteOptions, CallDeadline {
  /** A missing key: false (default) is KeyNotFoundError, true merges the patch into {}. */
  createIfMissing?: boolean;
}

export interface CallDeadline {
  /**
   * When the caller stops waiting (ms since the epoch). An engine that reads
   * before it writes (etcd) does not send the write after it: the call then
   * fails NotSentError, nothing applied, instead of landing after its
   * caller was told DEADLINE_EXCEEDED.
   */
  deadline?: number;
}

export interface SetResult {
  /** The store revision of this write (the key's new modRevision). */
  revision: number;
}

export interface DeleteResult {
  deleted: boolean;
  /** The revision of the delete, or the current store revision if nothing was deleted. */
  revision: number;
}

export interface ListOptions {
  /** Only keys starting with this prefix (default: all keys). */
  prefix?: string;
  /** Only keys strictly after this key in code point order (a paging cursor). */
  startAfter?: string;
  /** At most this many keys (default: no limit). */
  limit?: number;
}

export interface ListResult {
  /** Keys in Unicode code point order (= UTF-8 byte order). */
  keys: string[];
  /** True if more keys match after the last one returned. */
  more: boolean;
  /** The store revision the page was read at. */
  revision: number;
}

export interface ListEntriesResult {
  /** Entries in code point order of their keys. */
  entries: Entry[];
  /** True if more keys match after the last one returned. */
  more: boolean;
  /** The store revision the page was read at. */
  revision: number;
}

export interface ClearResult {
  deletedCount: number;
  /** The revision of the clear, or the current store revision if nothing was removed. */
  revision: number;
}

/** One condition of a transaction, on the key's state as the transaction begins (a missing key: revisions 0, no value, no lease). */
export type Compare = {
  key: string;
  result: 'equal' | 'not_equal' | 'less' | 'greater';
} & ({ target: 'version' | 'createRevision' | 'modRevision' | 'lease'; number: number } | { target: 'value'; value: JsonValue });

/** One op of a transaction. */
export type TxnOp =
  | { type: 'get'; key: string }
  | { type: 'set'; key: string; value: JsonValue | JsonText; lease?: number; ttlMs?: number }
  | { type: 'delete'; key: string }
  | { type: 'clear'; prefix: string }
  | { type: 'update'; key: string; patch: JsonValue; createIfMissing?: boolean };

export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** What one op of a transaction gave, in the same position. */
export type TxnOpResult =
  | { type: 'get'; entry: Entry | undefined }
  | { type: 'set'; revision: number }
  | { type: 'delete'; deleted: boolean; revision: number }
  | { type: 'clear'; deletedCount: number; revision: number }
  | { type: 'update'; entry: Entry };

export interface TxnResult {
  succeeded: boolean;
  /** The transaction's revision if it wrote anything, else the revision it read at. */
  revision: number;
  results: TxnOpResult[];
}

export interface Lease {
  id: number;
  /** The time to live it was granted. */
  ttlMs: number;
  /** A private lease (made by a set with ttlMs, for that key only); absent: false. */
  private?: boolean;
}

export interface LeaseInfo extends Lease {
  /** Time left before it expires. */
  remainingMs: number;
  /** Its keys, in code point order (when asked for). */
  keys: string[] | undefined;
}

/** One live lease as listLeases reports it. */
export interface LeaseStatus extends Lease {
  /** Time left before it expires. */
  remainingMs: number;
  /** How many keys are attached to it. */
  keyCount: number;
}

/** A page of listLeases. */
export interface ListLeasesResult {
  leases: LeaseStatus[];
  /** More leases follow the last one given. */
  more: boolean;
}

export interface WatchOptions {
  /** Watch one key... */
  key?: string;
  /** ...or every key under a prefix ('' = every key). Exactly one of key and prefix. */
  prefix?: string;
  /**
   * 0 or absent: changes committed after the watch starts, the first batch
   * (at once) having no events and the revision it starts after. N: every
   * change with revision >= N, then live; N older than the history window
   * is WatchCompactedError, N in the future waits for it.
   */
  startRevision?: number;
  /** Also give each changed key's previous entry. */
  prevEntry?: boolean;
}

/** One key's change as a watcher sees it. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The change's revision (for a put, entry.modRevision). */
  revision: number;
  /** For a put: the new entry. */
  entry: StoredEntry | undefined;
  /** With prevEntry: the key's entry before the change, if it existed. */
  prev: StoredEntry | undefined;
}

/**
 * What a watcher receives at a time: the events of whole revisions (never
 * part of one), in revision order, or none (progress). `revision` is what the
 * batch is current to: every matching change up to it has now been given.
 */
export interface WatchBatch {
  events: WatchEvent[];
  revision: number;
}

/**
 * An open watch. next() resolves with the next batch once there is one (a
 * progress batch with no events when the store has been quiet for the
 * progress interval), or rejects with why the watch ended:
 * WatchCompactedError, WatchTooSlowError (the history it needed is gone) or
 * StoreClosedError. Call next() again only after the previous call settled;
 * not calling it is how a slow consumer pushes back. close() ends it.
 */
export interface Watch {
  next(): Promise<WatchBatch>;
  close(): void;
}

/**
 * A frozen view of the whole store at one revision (for a backup): taken at
 * once, read while writes go on, released when done.
 */
export interface StoreSnapshot {
  /** The store revision of the view: every change up to it, none after. */
  readonly revision: number;
  readonly keyCount: number;
  /** The leases live at that revision. */
  readonly leases: readonly Lease[];
  /** Every key in code point order, with its entry as of the view's revision. */
  entries(): Iterable<readonly [string, StoredEntry]>;
  /** Tells the engine the view is no longer read. Idempotent. */
  release(): void;
}

/** What an engine can tell about itself cheaply, for monitoring (metrics scrapes). */
export interface StoreStats {
  revision: number;
  /** Watches open on this store. */
  watchers: number;
  /** Live keys, where the engine knows without a round trip (the file engine). */
  keys?: number;
  /** Live leases, likewise. */
  leases?: number;
  /** File engine: bytes of the records of the live entries, and of every data file (the difference is what compaction reclaims). */
  liveBytes?: number;
  diskBytes?: number;
}

export interface KeyValueStore {
  /** The current store revision (0 for a store that never changed). */
  readonly revision: number;
  /** Set while the store cannot write (file engine: an I/O error, a lost directory lock, reads may go on; etcd engine: etcd does not answer); health reports NOT_SERVING. */
  readonly failure?: Error;
  get(key: string): Promise<Entry | undefined>;
  /** `value` may come as JSON text already read against the value rules (value-rules.ts JsonText). */
  set(key: string, value: JsonValue | JsonText, options?: SetOptions): Promise<SetResult>;
  delete(key: string, options?: WriteOptions): Promise<DeleteResult>;
  listKeys(options?: ListOptions): Promise<ListResult>;
  /** Entries (keys with values) in code point order, read at one revision. */
  list(options?: ListOptions): Promise<ListEntriesResult>;
  /** Merges an RFC 7396 JSON merge patch into a key's value, atomically; returns the new entry. */
  update(key: string, patch: JsonValue, options?: UpdateOptions): Promise<Entry>;
  /** Compares, then the success or the failure ops: all of it one change with one revision. */
  txn(request: TxnRequest, options?: CallDeadline): Promise<TxnResult>;
  grantLease(ttlMs: number): Promise<Lease>;
  /** Resets the lease's time to live to its full ttlMs; LeaseNotFoundError if it is gone. */
  keepAliveLease(id: number): Promise<Lease>;
  /** Deletes the lease and its keys (one revision if it had any). */
  revokeLease(id: number): Promise<ClearResult>;
  leaseInfo(id: number, options?: { keys?: boolean }): Promise<LeaseInfo>;
  /** The live leases with an id above `after`, in id order, at most `limit`; NotSupportedError where the engine cannot tell its own leases. */
  listLeases(options?: { after?: number; limit?: number }): Promise<ListLeasesResult>;
  /** Removes every key under the prefix (all keys if empty) in one atomic change. */
  clear(options?: { prefix?: string }): Promise<ClearResult>;
  /**
   * Watches a key or prefix: every committed change to it, exactly once, in
   * revision order, from startRevision on — or an explicit error, never a gap.
   */
  watch(options: WatchOptions): Watch;
  /**
   * How often (ms) a watch with nothing to receive gets a progress batch;
   * undefined where the engine cannot say.
   */
  readonly watchProgressMs: number | undefined;
  /**
   * The id of the store's history (WatchResponse.history_id): the same for
   * as long as every revision names the same change; undefined where the
   * engine cannot say (over etcd).
   */
  readonly historyId: string | undefined;
  /**
   * A consistent view of the whole store at its current revision, taken
   * without pausing writes (NotSupportedError on an engine that cannot).
   * Release it when done.
   */
  snapshot(): Promise<StoreSnapshot>;
  /** Numbers for monitoring; cheap, synchronous. */
  stats(): StoreStats;
  /** Finishes pending writes, releases files and locks. Idempotent. */
  close(): Promise<void>;
}
