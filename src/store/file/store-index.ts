/**
 * The in-memory state of the store: every live key with its value (kept as
 * JSON text, parsed on read) and revisions, plus the store revision.
 *
 * A Map from key to entry serves point reads and writes (O(1): their cost
 * does not grow with the number of keys). A B+tree of the keys alone, in code
 * point order, serves listing and prefix ranges; it changes only when a key
 * is created or removed, so overwriting an existing key never walks it (at a
 * million keys that walk was most of the cost of a set).
 *
 * apply(change) is the one way the index changes, for the commit loop and
 * for replay alike. Replay builds the Map alone and the tree once at the end
 * (forReplay, then finishReplay): sorting once and bulk-loading is several
 * times faster than a million inserts.
 *
 * Entries are replaced, never mutated. Compaction and backups get frozen
 * views: an O(1) copy-on-write clone of the key tree plus the Map, with the
 * first replaced or removed entry of each key saved aside for each view in
 * use, so a view reads exactly the state at the moment it was taken. Several
 * views may be in use at once (a backup while a compaction runs); each write
 * then saves for each of them.
 */
import BTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad';
import type { Change, StoredEntry } from '../change';
import { compareKeys, compareSortKeys, keyOfSortKey, sortKey } from '../key-order';
import type { DecideState, LeaseView } from './decide';
import { setRecordSize } from './record-codec';

/** A key's current value and revisions; kept small, since a store holds millions. */
export type IndexEntry = StoredEntry;

/** Bytes of the SET record that stores this entry: the "live bytes" that compaction weighs dead bytes against. */
export function entryRecordBytes(key: string, entry: IndexEntry): number {
  return setRecordSize(Buffer.byteLength(key, 'utf8'), Buffer.byteLength(entry.valueJson, 'utf8'), entry.lease);
}

/** A live lease: its time to live and the keys attached to it (deadlines are the lease clock's, not state). */
export interface LeaseState extends LeaseView {
  readonly id: number;
  readonly ttlMs: number;
  readonly keys: Set<string>;
}

/** A frozen, ordered view of the entries as they were when snapshot() was called (for compaction and backups). */
export class IndexSnapshot {
  /** The entry each key had when the view was taken, for keys changed since. */
  readonly saved = new Map<string, IndexEntry>();

  constructor(
    private readonly keys: BTree<string, undefined>,
    private readonly byKey: Map<string, IndexEntry>,
    /** The leases live when the view was taken. */
    readonly leases: ReadonlyArray<{ id: number; ttlMs: number }>,
    /** The store revision, and the number of keys, when the view was taken. */
    readonly revision: number,
    readonly size: number,
  ) {}

  /** Keys in code point order, each with its entry as of the snapshot. */
  *entries(): IterableIterator<[string, IndexEntry]> {
    for (const sk of this.keys.keys()) {
      const key = keyOfSortKey(sk);
      const entry = this.saved.get(key) ?? this.byKey.get(key);
      // Every change to a key in the view saves its old entry first; a miss is a bug, and a snapshot missing a key would lose it.
      if (entry === undefined) throw new Error(`index snapshot lost the entry of key ${JSON.stringify(key)}`);
      yield [key, entry];
    }
  }
}

const NODE_SIZE = 64;

function emptyTree(): BTree<string, undefined> {
  return new BTree<string, undefined>(undefined, compareSortKeys, NODE_SIZE);
}

export class StoreIndex implements DecideState {
  /** The store revision of the last change applied. */
  revision: number;
  /** Sum of the SET record sizes of all live entries. */
  liveBytes = 0;
  private byKey = new Map<string, IndexEntry>();
  /** sortKey() of every live key; undefined while replay builds the Map alone. */
  private ordered: BTree<string, undefined> | undefined;
  /** The views in use (a compaction's, backups'), whose old entries must be saved before they change. */
  private readonly frozen = new Set<IndexSnapshot>();
  private readonly leases = new Map<number, LeaseState>();

  private constructor(revision: number, ordered: BTree<string, undefined> | undefined) {
    this.revision = revision;
    this.ordered = ordered;
  }

  static empty(revision = 0): StoreIndex {
    return new StoreIndex(revision, emptyTree());
  }

  /** An index for replay: load() and apply() fill the Map; finishReplay() builds the ordered tree. */
  static forReplay(): StoreIndex {
    return new StoreIndex(0, undefined);
  }

  /** Loads a key from a snapshot (replay only): state, not a change. Its lease comes first in the snapshot. */
  load(key: string, entry: IndexEntry): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.liveBytes -= entryRecordBytes(key, old);
    this.byKey.set(key, entry);
    this.liveBytes += entryRecordBytes(key, entry);
    if (entry.lease !== 0) this.leases.get(entry.lease)?.keys.add(key);
    if (entry.modRevision > this.revision) this.revision = entry.modRevision;
  }

  /** Ends replay: builds the ordered tree of the keys in one pass. */
  finishReplay(): void {
    const sortKeys: string[] = new Array<string>(this.byKey.size);
    let sorted = true;
    let i = 0;
    for (const key of this.byKey.keys()) {
      const sk = sortKey(key);
      if (i > 0 && sorted && !(sortKeys[i - 1] < sk)) sorted = false;
      sortKeys[i++] = sk;
    }
    // Keys first written in order (a snapshot, or sequential loading) need no sort. Without a
    // comparator the sort compares UTF-16 code units, which on sort keys is code point order.
    if (!sorted) sortKeys.sort();
    this.ordered =
      sortKeys.length === 0
        ? emptyTree()
        : bulkLoad(sortKeys, new Array<undefined>(sortKeys.length).fill(undefined), NODE_SIZE, compareSortKeys, 0.8);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): IndexEntry | undefined {
    return this.byKey.get(key);
  }

  lease(id: number): LeaseState | undefined {
    return this.leases.get(id);
  }

  get leaseCount(): number {
    return this.leases.size;
  }

  /** Every live lease. */
  allLeases(): IterableIterator<LeaseState> {
    return this.leases.values();
  }

  /** Step 3 of a commit, and of replay: makes a committed change visible. */
  apply(change: Change): void {
    switch (change.type) {
      case 'set':
        this.put(change.key, change.entry);
        break;
      case 'delete':
        this.remove(change.key);
        break;
      case 'clear':
        if (change.prefix === '' && this.ordered !== undefined) this.removeAll();
        else for (const [key] of change.removed) this.remove(key);
        break;
      case 'lease-grant':
        this.leases.set(change.id, { id: change.id, ttlMs: change.ttlMs, keys: new Set() });
        // Leases do not move the store revision.
        return;
      case 'lease-revoke':
        // Its keys go by the deletes that come with it.
        this.leases.delete(change.id);
        return;
    }
    this.revision = change.revision;
  }

  /** Every key under the prefix ('' = all), in code point order, with its entry. */
  entriesUnder(prefix: string): Array<[string, IndexEntry]> {
    const found: Array<[string, IndexEntry]> = [];
    if (this.ordered === undefined) {
      for (const [key, entry] of this.byKey) if (key.startsWith(prefix)) found.push([key, entry]);
      return found.sort(([a], [b]) => compareKeys(a, b));
    }
    const p = sortKey(prefix);
    for (const sk of this.ordered.keys(p)) {
      if (!sk.startsWith(p)) break;
      const key = keyOfSortKey(sk);
      found.push([key, this.byKey.get(key) as IndexEntry]);
    }
    return found;
  }

  /** Keys under `prefix` strictly after `startAfter`, in code point order. */
  list(prefix: string, startAfter: string | undefined, limit: number): { keys: string[]; more: boolean } {
    const p = sortKey(prefix);
    let start = p;
    let skip: string | undefined;
    if (startAfter !== undefined) {
      const s = sortKey(startAfter);
      if (s >= start) {
        start = s;
        skip = s;
      }
    }
    const keys: string[] = [];
    for (const sk of this.tree().keys(start)) {
      if (sk === skip) continue;
      if (!sk.startsWith(p)) break;
      if (keys.length >= limit) return { keys, more: true };
      keys.push(keyOfSortKey(sk));
    }
    return { keys, more: false };
  }

  /**
   * A frozen ordered view; O(1) (plus one line per live lease). Until
   * release(), the first change to each key saves its old entry for the view.
   */
  snapshot(): IndexSnapshot {
    const leases = [...this.leases.values()].map(({ id, ttlMs }) => ({ id, ttlMs }));
    const view = new IndexSnapshot(this.tree().clone(), this.byKey, leases, this.revision, this.byKey.size);
    this.frozen.add(view);
    return view;
  }

  /** Stops saving old entries for a view that is no longer read. */
  release(view: IndexSnapshot): void {
    this.frozen.delete(view);
  }

  private put(key: string, entry: IndexEntry): void {
    const old = this.byKey.get(key);
    if (old?.lease !== entry.lease) {
      if (old !== undefined && old.lease !== 0) this.leases.get(old.lease)?.keys.delete(key);
      if (entry.lease !== 0) this.leases.get(entry.lease)?.keys.add(key);
    }
    if (old === undefined) {
      this.ordered?.set(sortKey(key), undefined);
      this.liveBytes += entryRecordBytes(key, entry);
    } else {
      this.save(key, old);
      this.liveBytes += entryRecordBytes(key, entry) - entryRecordBytes(key, old);
    }
    this.byKey.set(key, entry);
  }

  private remove(key: string): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    this.save(key, old);
    if (old.lease !== 0) this.leases.get(old.lease)?.keys.delete(key);
    this.liveBytes -= entryRecordBytes(key, old);
    this.byKey.delete(key);
    this.ordered?.delete(sortKey(key));
  }

  private removeAll(): void {
    for (const lease of this.leases.values()) lease.keys.clear();
    // Frozen views keep the old Map and tree, which nothing changes any more.
    this.byKey = new Map();
    this.ordered = emptyTree();
    this.frozen.clear();
    this.liveBytes = 0;
  }

  private tree(): BTree<string, undefined> {
    if (this.ordered === undefined) throw new Error('the index is still being replayed');
    return this.ordered;
  }

  private save(key: string, old: IndexEntry): void {
    if (this.frozen.size === 0) return;
    for (const view of this.frozen) if (!view.saved.has(key)) view.saved.set(key, old);
  }
}
