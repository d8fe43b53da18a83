/**
 * A write, as a value. Every committed change to the store is one Change:
 * the commit loop decides it, the log records it, the index applies it, the
 * change feed publishes it, and replay after a restart applies the very same
 * value again. Engine-neutral: no file offsets, no protobuf.
 *
 * Several changes may share one revision (a Clear is one change; a
 * transaction, later, is several): a reader or watcher sees all changes of a
 * revision or none.
 */

/** A key's stored state: its value as JSON text, its revisions and its lease. Never mutated, only replaced. */
export interface StoredEntry {
  readonly valueJson: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** The lease the key is attached to; 0 if none. */
  readonly lease: number;
}

/** A key was created or overwritten. `entry.modRevision` is the change's revision. */
export interface SetChange {
  readonly type: 'set';
  readonly key: string;
  readonly revision: number;
  readonly entry: StoredEntry;
  /** The key's entry before this change, if it existed. */
  readonly prev: StoredEntry | undefined;
}

/** An existing key was deleted. */
export interface DeleteChange {
  readonly type: 'delete';
  readonly key: string;
  readonly revision: number;
  /** The entry deleted. */
  readonly prev: StoredEntry;
}

/** Every key under a prefix ('' = every key) was deleted at once; a clear that removes nothing is no change. */
export interface ClearChange {
  readonly type: 'clear';
  readonly prefix: string;
  readonly revision: number;
  /** The keys removed, in code point order, with the entries they had. */
  readonly removed: ReadonlyArray<readonly [string, StoredEntry]>;
}

/**
 * A lease was granted. Leases do not bump the store revision (as in etcd):
 * `revision` is the store revision when it was granted.
 */
export interface LeaseGrantChange {
  readonly type: 'lease-grant';
  readonly id: number;
  readonly ttlMs: number;
  readonly revision: number;
  /**
   * A private lease: made by a set with ttlMs for that one key. No other key
   * may be attached to it, and it is revoked in the same revision as the key
   * stops using it (set again, deleted, cleared).
   */
  readonly private?: boolean;
}

/**
 * A lease was revoked or expired. Its keys are deleted by DeleteChanges of
 * the same revision in the same commit (one revision for all of them; the
 * store revision is bumped only if there were keys). A private lease is also
 * revoked right after the change (of the same revision) that took its key
 * off it: it then has no keys left.
 */
export interface LeaseRevokeChange {
  readonly type: 'lease-revoke';
  readonly id: number;
  readonly revision: number;
}

/** A change to keys: what watchers see and the history window keeps. */
export type KeyChange = SetChange | DeleteChange | ClearChange;

export type Change = KeyChange | LeaseGrantChange | LeaseRevokeChange;

export function isKeyChange(change: Change): change is KeyChange {
  return change.type === 'set' || change.type === 'delete' || change.type === 'clear';
}

/** A store entry made from a key and its stored state (the value still JSON text). */
export function storedEntryBytes(key: string, entry: StoredEntry): number {
  // Approximate heap bytes: UTF-16 strings plus the object; used to bound memory, not to bill.
  return 2 * (key.length + entry.valueJson.length) + 64;
}

/**
 * The history window's measure of a change (--watch-history-bytes): its
 * entries as storedEntryBytes counts them, in UTF-16 units of its strings.
 * Every packed form of the window counts a change the same (packed-columns.ts,
 * packed-history.ts), so the window holds as many changes after a chunk is
 * packed, or after a restart loads them from a checkpoint, as before.
 */
export function keyChangeBytes(change: KeyChange): number {
  switch (change.type) {
    // A previous entry may be held by nothing but this change: count it.
    case 'set':
      return storedEntryBytes(change.key, change.entry) + (change.prev === undefined ? 0 : storedEntryBytes(change.key, change.prev));
    case 'delete':
      return storedEntryBytes(change.key, change.prev);
    case 'clear': {
      let bytes = 2 * change.prefix.length + 64;
      for (const [key, entry] of change.removed) bytes += storedEntryBytes(key, entry);
      return bytes;
    }
  }
}
