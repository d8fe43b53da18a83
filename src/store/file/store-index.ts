/**
 * The in-memory state of the store: every live key with its value (kept as
 * JSON text, parsed on read) and revisions, plus the store revision and the
 * leases.
 *
 * Layers, newest first:
 *   - the active layer: a Map from key to entry (or null: deleted) of the
 *     changes since the last freeze; every write lands here;
 *   - frozen layers: earlier active layers, read-only while a view
 *     (snapshot()) reads them: a compaction writing a checkpoint, a backup;
 *   - the base: the keys of the checkpoint loaded at open or written by the
 *     last compaction, as a KeyTable (key-table.ts): entry bytes in large
 *     Buffers, nothing per key on the JS heap.
 * A key's state is that of the newest layer that mentions it. So a point
 * read or write costs a Map lookup or two and at most one hash lookup,
 * whatever the number of keys. A compaction writes the state of the base and
 * the frozen layers below it as a new checkpoint and then puts that
 * checkpoint's table in their place (replaceBase), so the JS heap holds only
 * the changes made since the last checkpoint.
 *
 * Order, for listing and prefix ranges: the base is sorted; each layer also
 * keeps, in a B+tree, the keys it set that were not live below it when set
 * (its new keys). A key live below keeps its place there, so overwriting or
 * deleting an existing key never touches a tree (at a million keys that
 * walk was most of the cost of a set). Whether a key is live below a layer
 * never changes while the layer exists (lower layers are frozen, and
 * replaceBase keeps their state), so every live key is in the base or in the
 * new keys of some layer; listing merges those sorted sources.
 *
 * apply(change) is the one way the state changes, for the commit loop and
 * for replay alike. Replay fills the active Map alone and builds its tree
 * once at the end (forReplay, then finishReplay): sorting once and
 * bulk-loading is several times faster than inserting key by key.
 */
import BTree from 'sorted-btree';
import { bulkLoad } from 'sorted-btree/extended/bulkLoad';
import type { Change, StoredEntry } from '../change';
import { compareSortKeys, keyOfSortKey, sortKey } from '../key-order';
import type { DecideState, LeaseView } from './decide';
import { KeyTable } from './key-table';
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
  readonly private: boolean;
}

/** Changes over the layers below: an entry set, or null for a key deleted that is live below. */
export interface Layer {
  readonly changes: Map<string, IndexEntry | null>;
  /** sortKey() of the keys set here that were not live below when set; undefined while replay fills the Map. */
  newKeys: BTree<string, undefined> | undefined;
  /** Views reading this layer (frozen layers only); at 0 it may take in the layer above it again. */
  views: number;
}

const NODE_SIZE = 64;
/** Decoded base entries kept for keys read often (StoreIndex.baseCache), and the slots that admit them (a power of two). */
const BASE_CACHE_KEYS = 4096;
const SEEN_SLOTS = 8192;

function emptyTree(): BTree<string, undefined> {
  return new BTree<string, undefined>(undefined, compareSortKeys, NODE_SIZE);
}

function newLayer(replaying: boolean): Layer {
  return { changes: new Map(), newKeys: replaying ? undefined : emptyTree(), views: 0 };
}

/** A frozen, ordered view of the entries as they were when snapshot() was called (for compaction and backups). */
export class IndexSnapshot {
  released = false;

  constructor(
    /** The base and the frozen layers (oldest first) that hold the state; none of them changes while the view is in use. */
    readonly base: KeyTable,
    readonly layers: readonly Layer[],
    /** The leases live when the view was taken. */
    readonly leases: ReadonlyArray<{ id: number; ttlMs: number; private: boolean }>,
    /** The store revision, and the number of keys, when the view was taken. */
    readonly revision: number,
    readonly size: number,
  ) {}

  /** Keys in code point order, each with its entry as of the snapshot. */
  entries(): IterableIterator<[string, IndexEntry]> {
    return liveEntries(this.base, this.layers, '', '');
  }
}

export class StoreIndex implements DecideState {
  /** The store revision of the last change applied. */
  revision: number;
  /** Sum of the SET record sizes of all live entries. */
  liveBytes = 0;
  /** Changes to keys applied since the index was made (commits and replay alike; a checkpoint's keys are state, not changes). */
  changeCount = 0;
  private count = 0;
  private base = KeyTable.empty;
  /** Oldest first. */
  private frozen: Layer[] = [];
  private active: Layer;
  private replaying: boolean;
  private readonly leases = new Map<number, LeaseState>();
  /**
   * Entries of the base read again and again, decoded (the base never
   * changes; a new one clears this): a hot key's read is then two Map
   * lookups, as when every key was a JS object, not a hash probe of the
   * table and a decode. A key gets in on its second read while its table
   * position is still in seenAt (one slot per position, modulo its size), so
   * reads spread over many keys cost a typed-array check each, and the Map is
   * emptied when full.
   */
  private readonly baseCache = new Map<string, IndexEntry>();
  private readonly seenAt = new Int32Array(SEEN_SLOTS).fill(-1);

  private constructor(revision: number, replaying: boolean) {
    this.revision = revision;
    this.replaying = replaying;
    this.active = newLayer(replaying);
  }

  static empty(revision = 0): StoreIndex {
    return new StoreIndex(revision, false);
  }

  /** An index for replay: setBase(), load() and apply() fill it; finishReplay() builds the order of the keys set. */
  static forReplay(): StoreIndex {
    return new StoreIndex(0, true);
  }

  /** Replay only, first: the keys of a checkpoint (its leases granted already). */
  setBase(table: KeyTable, revision: number): void {
    this.useBase(table);
    this.count = table.count;
    this.liveBytes = table.liveBytes;
    for (const i of table.leased) this.leases.get(table.lease(i))?.keys.add(table.key(i));
    if (revision > this.revision) this.revision = revision;
  }

  /** Loads a key from a snapshot of format 3 or 4 (replay only): state, not a change. Its lease comes first in the snapshot. */
  load(key: string, entry: IndexEntry): void {
    this.put(key, entry, this.get(key));
    if (entry.modRevision > this.revision) this.revision = entry.modRevision;
  }

  /** Ends replay: builds the ordered tree of the keys the logs created. */
  finishReplay(): void {
    const sortKeys: string[] = [];
    let sorted = true;
    for (const [key, entry] of this.active.changes) {
      if (entry === null || this.liveBelowActive(key)) continue;
      const sk = sortKey(key);
      if (sorted && sortKeys.length > 0 && !(sortKeys[sortKeys.length - 1] < sk)) sorted = false;
      sortKeys.push(sk);
    }
    // Keys first written in order (sequential loading) need no sort. Without a
    // comparator the sort compares UTF-16 code units, which on sort keys is code point order.
    if (!sorted) sortKeys.sort();
    this.active.newKeys =
      sortKeys.length === 0
        ? emptyTree()
        : bulkLoad(sortKeys, new Array<undefined>(sortKeys.length).fill(undefined), NODE_SIZE, compareSortKeys, 0.8);
    this.replaying = false;
  }

  get size(): number {
    return this.count;
  }

  /** Keys held by the JS heap (set or deleted since the last checkpoint), against those in checkpoint tables. */
  get layout(): { tableKeys: number; changedKeys: number; layers: number } {
    let changedKeys = this.active.changes.size;
    for (const layer of this.frozen) changedKeys += layer.changes.size;
    return { tableKeys: this.base.count, changedKeys, layers: this.frozen.length + 1 };
  }

  get(key: string): IndexEntry | undefined {
    const own = this.active.changes.get(key);
    if (own !== undefined) return own ?? undefined;
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const e = this.frozen[i].changes.get(key);
      if (e !== undefined) return e ?? undefined;
    }
    if (this.base.count === 0) return undefined;
    const cached = this.baseCache.get(key);
    if (cached !== undefined) return cached;
    const at = this.base.find(key);
    if (at < 0) return undefined;
    const entry = this.base.entry(at);
    // Read twice while its slot remembers it: kept decoded, so a key read often skips the table.
    const slot = at & (SEEN_SLOTS - 1);
    if (this.seenAt[slot] === at) {
      if (this.baseCache.size >= BASE_CACHE_KEYS) this.baseCache.clear();
      this.baseCache.set(key, entry);
    } else {
      this.seenAt[slot] = at;
    }
    return entry;
  }

  private useBase(table: KeyTable): void {
    this.base = table;
    this.baseCache.clear();
    this.seenAt.fill(-1);
  }

  lease(id: number): LeaseState | undefined {
    return this.leases.get(id);
  }

  /**
   * The `count` smallest lease ids above `after`, in order, and whether there
   * are more. Ids are random, so this selects with a bounded max-heap in one
   * pass instead of sorting them all for every page (at a million leases,
   * a sort took about 0.8 s of the event loop per page).
   */
  leaseIdsAfter(after: number, count: number): { ids: number[]; more: boolean } {
    // heap[0] is the largest of the smallest ids found so far; count + 1 of them tell whether more follow.
    const keep = count + 1;
    const heap: number[] = [];
    for (const id of this.leases.keys()) {
      if (id <= after) continue;
      if (heap.length < keep) {
        heap.push(id);
        for (let i = heap.length - 1; i > 0;) {
          const parent = (i - 1) >> 1;
          if (heap[parent] >= heap[i]) break;
          [heap[parent], heap[i]] = [heap[i], heap[parent]];
          i = parent;
        }
      } else if (id < heap[0]) {
        heap[0] = id;
        for (let i = 0; ;) {
          const left = 2 * i + 1;
          const right = left + 1;
          let largest = i;
          if (left < heap.length && heap[left] > heap[largest]) largest = left;
          if (right < heap.length && heap[right] > heap[largest]) largest = right;
          if (largest === i) break;
          [heap[largest], heap[i]] = [heap[i], heap[largest]];
          i = largest;
        }
      }
    }
    heap.sort((a, b) => a - b);
    return { ids: heap.slice(0, count), more: heap.length > count };
  }

  get leaseCount(): number {
    return this.leases.size;
  }

  /** Every live lease. */
  allLeases(): IterableIterator<LeaseState> {
    return this.leases.values();
  }

  /**
   * Step 3 of a commit, and of replay: makes a committed change visible. The
   * change was decided against this state (decide.ts, or replay's decodeChange),
   * so the previous entries it carries are the current ones.
   */
  apply(change: Change): void {
    switch (change.type) {
      case 'set':
        this.put(change.key, change.entry, change.prev);
        break;
      case 'delete':
        this.remove(change.key, change.prev);
        break;
      case 'clear':
        if (change.prefix === '') this.removeAll();
        else for (const [key, entry] of change.removed) this.remove(key, entry);
        break;
      case 'lease-grant':
        this.leases.set(change.id, { id: change.id, ttlMs: change.ttlMs, keys: new Set(), private: change.private === true });
        // Leases do not move the store revision.
        return;
      case 'lease-revoke':
        // Its keys go by the deletes that come with it.
        this.leases.delete(change.id);
        return;
    }
    this.changeCount++;
    this.revision = change.revision;
  }

  /**
   * Replay's apply() of a SET record, `recordBytes` long: the previous entry
   * is looked up here, once, and returned (for the history window) only if
   * `withPrev`; without it, a key that only the checkpoint's table holds is
   * not decoded.
   */
  replaySet(key: string, entry: IndexEntry, recordBytes: number, withPrev: boolean): IndexEntry | undefined {
    const changes = this.active.changes;
    const own = changes.get(key);
    let prev: IndexEntry | undefined;
    let live = false;
    let oldBytes = 0;
    let oldLease = 0;
    if (own !== undefined && own !== null) {
      prev = own;
      live = true;
      oldBytes = entryRecordBytes(key, own);
      oldLease = own.lease;
    } else if (own === undefined && this.frozen.length === 0 && this.base.count > 0) {
      const at = this.base.find(key);
      if (at >= 0) {
        live = true;
        oldBytes = this.base.recordBytes(at);
        oldLease = this.base.lease(at);
        if (withPrev) prev = this.base.entry(at);
      }
    } else if (own === undefined) {
      prev = this.get(key);
      live = prev !== undefined;
      if (prev !== undefined) {
        oldBytes = entryRecordBytes(key, prev);
        oldLease = prev.lease;
      }
    }
    if (oldLease !== entry.lease) {
      if (oldLease !== 0) this.leases.get(oldLease)?.keys.delete(key);
      if (entry.lease !== 0) this.leases.get(entry.lease)?.keys.add(key);
    }
    if (live) {
      this.liveBytes += recordBytes - oldBytes;
    } else {
      if (own === undefined) this.active.newKeys?.set(sortKey(key), undefined);
      this.count++;
      this.liveBytes += recordBytes;
    }
    changes.set(key, entry);
    this.changeCount++;
    this.revision = entry.modRevision;
    return withPrev ? prev : undefined;
  }

  /** Every key under the prefix ('' = all), in code point order, with its entry. */
  entriesUnder(prefix: string): Array<[string, IndexEntry]> {
    const p = sortKey(prefix);
    return [...liveEntries(this.base, this.layersNow(), p, p)];
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
        skip = startAfter;
      }
    }
    const keys: string[] = [];
    for (const [key] of liveEntries(this.base, this.layersNow(), start, p)) {
      if (key === skip) continue;
      if (keys.length >= limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }

  /**
   * A frozen ordered view; O(1) (plus one line per live lease): the active
   * layer is frozen and a new one started. Several views may be in use at
   * once; release() each.
   */
  snapshot(): IndexSnapshot {
    if (this.replaying) throw new Error('the index is still being replayed');
    const leases = [...this.leases.values()].map((lease) => ({ id: lease.id, ttlMs: lease.ttlMs, private: lease.private }));
    this.frozen.push(this.active);
    this.active = newLayer(false);
    for (const layer of this.frozen) layer.views++;
    return new IndexSnapshot(this.base, [...this.frozen], leases, this.revision, this.count);
  }

  /** A view is no longer read: its layers may take in the changes above them again. */
  release(view: IndexSnapshot): void {
    if (view.released) return;
    view.released = true;
    for (const layer of view.layers) layer.views--;
    this.fold();
  }

  /**
   * After a compaction wrote the view's state as a checkpoint: `table` (that
   * checkpoint's keys) takes the place of the base and frozen layers the view
   * read, if they are still there (a clear of everything meanwhile drops them
   * anyway), and the view is released.
   */
  replaceBase(view: IndexSnapshot, table: KeyTable): void {
    const n = view.layers.length;
    if (this.base === view.base && n <= this.frozen.length && view.layers.every((layer, i) => this.frozen[i] === layer)) {
      this.useBase(table);
      this.frozen = this.frozen.slice(n);
    }
    this.release(view);
  }

  private layersNow(): Layer[] {
    return this.frozen.length === 0 ? [this.active] : [...this.frozen, this.active];
  }

  /** Whether a layer below the active one has `key` live. */
  private liveBelowActive(key: string): boolean {
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const e = this.frozen[i].changes.get(key);
      if (e !== undefined) return e !== null;
    }
    return this.base.count > 0 && this.base.find(key) >= 0;
  }

  private put(key: string, entry: IndexEntry, old: IndexEntry | undefined): void {
    if (old?.lease !== entry.lease) {
      if (old !== undefined && old.lease !== 0) this.leases.get(old.lease)?.keys.delete(key);
      if (entry.lease !== 0) this.leases.get(entry.lease)?.keys.add(key);
    }
    const changes = this.active.changes;
    if (old === undefined) {
      // Absent now and not deleted here: absent below too, so it takes a place in this layer's order.
      if (!changes.has(key)) this.active.newKeys?.set(sortKey(key), undefined);
      this.count++;
      this.liveBytes += entryRecordBytes(key, entry);
    } else {
      this.liveBytes += entryRecordBytes(key, entry) - entryRecordBytes(key, old);
    }
    changes.set(key, entry);
  }

  private remove(key: string, old: IndexEntry): void {
    if (old.lease !== 0) this.leases.get(old.lease)?.keys.delete(key);
    this.liveBytes -= entryRecordBytes(key, old);
    this.count--;
    const changes = this.active.changes;
    if (changes.get(key) !== undefined && !this.liveBelowActive(key)) {
      // Set here and nowhere below: forgotten entirely.
      changes.delete(key);
      this.active.newKeys?.delete(sortKey(key));
    } else {
      changes.set(key, null);
    }
  }

  private removeAll(): void {
    for (const lease of this.leases.values()) lease.keys.clear();
    // Views keep the layers and the table they read, which nothing changes.
    this.useBase(KeyTable.empty);
    this.frozen = [];
    this.active = newLayer(this.replaying);
    this.count = 0;
    this.liveBytes = 0;
  }

  /** While the newest frozen layer is read by no view, the active layer's changes go into it and it becomes the active layer again. */
  private fold(): void {
    while (this.frozen.length > 0 && this.frozen[this.frozen.length - 1].views === 0) {
      const below = this.frozen.pop() as Layer;
      const above = this.active;
      for (const [key, entry] of above.changes) {
        const there = below.changes.get(key);
        if (entry !== null) {
          // New above (not live below it), and neither deleted in `below` (so not live under it): new in `below` too.
          if (there === undefined && above.newKeys?.has(sortKey(key)) === true) below.newKeys?.set(sortKey(key), undefined);
          below.changes.set(key, entry);
        } else if (there !== undefined && there !== null && below.newKeys?.has(sortKey(key)) === true) {
          // Set in `below` and live nowhere under it: gone entirely.
          below.changes.delete(key);
          below.newKeys.delete(sortKey(key));
        } else {
          below.changes.set(key, null);
        }
      }
      this.active = below;
    }
  }
}

/** A sorted source of keys: a table's positions, a layer's new keys, or (during replay) a layer's keys sorted on demand. */
interface KeySource {
  /** sortKey() of the current key; undefined when done. */
  head: string | undefined;
  /** The table position of the current key (table sources only), else -1. */
  position: number;
  advance(): void;
}

function tableSource(table: KeyTable, from: string): KeySource {
  let i = table.seek(keyOfSortKey(from));
  const source: KeySource = {
    head: undefined,
    position: -1,
    advance() {
      if (i < table.count) {
        source.position = i;
        source.head = sortKey(table.key(i++));
      } else {
        source.head = undefined;
        source.position = -1;
      }
    },
  };
  source.advance();
  return source;
}

function layerSource(layer: Layer, from: string): KeySource {
  let keys: Iterator<string>;
  if (layer.newKeys !== undefined) {
    keys = layer.newKeys.keys(from);
  } else {
    // Replay has not ordered this layer yet: its live keys, sorted now (a clear during replay).
    const sks: string[] = [];
    for (const [key, entry] of layer.changes) {
      const sk = sortKey(key);
      if (entry !== null && sk >= from) sks.push(sk);
    }
    keys = sks.sort()[Symbol.iterator]();
  }
  const source: KeySource = {
    head: undefined,
    position: -1,
    advance() {
      const next = keys.next();
      source.head = next.done === true ? undefined : next.value;
    },
  };
  source.advance();
  return source;
}

/**
 * The live entries of a table under layers (oldest first), in code point
 * order, from sort key `from` while the sort key starts with `prefix`. Each
 * key comes from the merge of the sorted sources once, with its state in the
 * newest layer that mentions it.
 */
function* liveEntries(table: KeyTable, layers: readonly Layer[], from: string, prefix: string): Generator<[string, IndexEntry]> {
  const base = tableSource(table, from);
  const sources = layers.map((layer) => layerSource(layer, from));
  for (;;) {
    let min = base.head;
    for (const s of sources) if (s.head !== undefined && (min === undefined || s.head < min)) min = s.head;
    if (min === undefined || !min.startsWith(prefix)) return;
    const key = keyOfSortKey(min);
    let entry: IndexEntry | null | undefined;
    for (let i = layers.length - 1; i >= 0 && entry === undefined; i--) entry = layers[i].changes.get(key);
    if (entry === undefined && base.head === min) entry = table.entry(base.position);
    if (base.head === min) base.advance();
    for (const s of sources) if (s.head === min) s.advance();
    if (entry !== undefined && entry !== null) yield [key, entry];
  }
}
