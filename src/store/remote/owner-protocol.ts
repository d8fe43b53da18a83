/**
 * What a worker process and the store owner say to each other over their
 * FrameChannel. A worker asks for its replica first (bootstrap), then sends
 * calls; the owner answers each by id and streams the change feed.
 *
 * Bootstrap: the owner takes a snapshot of its index at revision R and opens
 * one watch on every key from the oldest revision of its history window; it
 * sends `bootstrap` (R, where the history starts and the store's history id), the snapshot's entries
 * in chunks, then `feed` batches from that watch up to R, then `live-feed`
 * batches of the owner's one live watch, shared by every worker. The worker
 * loads the entries as its replica at R, puts every change into its own
 * history window (so a watch can start as far back on a worker as on the
 * owner) and applies to the replica only the changes after R; changes it
 * has already (the live feed may repeat some up to R) it skips.
 */
import * as storeErrors from '../errors';
import type { ValidCall } from '../abstract-key-value-store';
import type { StoredEntry } from '../change';
import type { Lease, WatchBatch } from '../key-value-store';

export type WorkerMessage =
  /** `name`: the worker's, for the owner's log. */
  | { kind: 'bootstrap'; name?: string }
  | { kind: 'call'; id: number; call: ValidCall }
  /** The owner's committed revision now: a read waits until the replica has applied it. */
  | { kind: 'read-index'; id: number }
  /** The revision and leases of a snapshot of the owner's index (a backup on a worker). */
  | { kind: 'snapshot-info'; id: number };

export interface SnapshotInfo {
  revision: number;
  keyCount: number;
  leases: Lease[];
}

export type OwnerMessage =
  | { kind: 'reply'; id: number; value: unknown }
  | { kind: 'fail'; id: number; error: WireError }
  | { kind: 'bootstrap'; revision: number; historyFrom: number; keyCount: number; historyId: string | undefined }
  | { kind: 'entries'; entries: Array<[string, StoredEntry]> }
  /** Bootstrap history: changes up to the snapshot's revision, with previous entries. */
  | { kind: 'feed'; batch: WatchBatch }
  /** Live changes: a WatchBatch without previous entries, encoded once (owner-codec.ts) and the same bytes for every worker. */
  | { kind: 'live-feed'; bytes: Buffer }
  /** Why the owner's store refuses writes now (a disk error, a lost lock), or undefined once it takes them again. */
  | { kind: 'failure'; error: WireError | undefined }
  /** The replication watch ended (the owner is closing): the worker's replica stops here. */
  | { kind: 'feed-ended'; error: WireError };

/** An error as it crosses the channel: a store error keeps its class, code and fields (so it maps to the same status). */
export interface WireError {
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  return { name: error.name, message: error.message, fields: { ...error } };
}

/** Every StoreError class, by name: an error from the owner comes back as an instance of its own class. */
const STORE_ERROR_CLASSES = new Map<string, { prototype: object }>(
  Object.entries(storeErrors).filter(([, value]) => typeof value === 'function' && value.prototype instanceof storeErrors.StoreError),
);

export function fromWireError(wire: WireError): Error {
  const cls = STORE_ERROR_CLASSES.get(wire.name);
  const error: Error = cls === undefined ? new Error(wire.message) : (Object.create(cls.prototype) as Error);
  Object.assign(error, wire.fields);
  Object.defineProperty(error, 'message', { value: wire.message, writable: true, configurable: true });
  Object.defineProperty(error, 'name', { value: wire.name, writable: true, configurable: true });
  error.stack = `${wire.name}: ${wire.message}\n    (raised in the store owner process)`;
  return error;
}
