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

/** Any JSON value: what the store keeps under a key. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface Entry {
  key: string;
  value: JsonValue;
  createRevision: number;
  modRevision: number;
  version: number;
}

export interface WriteOptions {
  /**
   * Compare-and-set: the write happens only if the key's modRevision is
   * exactly this (0 = the key must not exist); otherwise RevisionMismatchError.
   */
  expectedRevision?: number;
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
}

export interface ClearResult {
  deletedCount: number;
  /** The revision of the clear, or the current store revision if nothing was removed. */
  revision: number;
}

export interface WatchOptions {
  /** Watch one key... */
  key?: string;
  /** ...or every key under a prefix ('' = every key). Exactly one of key and prefix. */
  prefix?: string;
  /**
   * 0 or absent: changes committed after the watch starts. N: every change
   * with revision >= N, then live; N older than the history window is
   * WatchCompactedError, N in the future waits for it.
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
 * WatchCompactedError, WatchTooSlowError (resume from its resumeRevision) or
 * StoreClosedError. Call next() again only after the previous call settled;
 * not calling it is how a slow consumer pushes back. close() ends it.
 */
export interface Watch {
  next(): Promise<WatchBatch>;
  close(): void;
}

export interface KeyValueStore {
  /** The current store revision (0 for a store that never changed). */
  readonly revision: number;
  /** Set once the store can no longer write (an I/O error, a lost directory lock); reads may go on. */
  readonly failure?: Error;
  get(key: string): Promise<Entry | undefined>;
  set(key: string, value: JsonValue, options?: WriteOptions): Promise<SetResult>;
  delete(key: string, options?: WriteOptions): Promise<DeleteResult>;
  listKeys(options?: ListOptions): Promise<ListResult>;
  /** Removes every key under the prefix (all keys if empty) in one atomic change. */
  clear(options?: { prefix?: string }): Promise<ClearResult>;
  /**
   * Watches a key or prefix: every committed change to it, exactly once, in
   * revision order, from startRevision on — or an explicit error, never a gap.
   */
  watch(options: WatchOptions): Watch;
  /** Finishes pending writes, releases files and locks. Idempotent. */
  close(): Promise<void>;
}
