/**
 * The keys of a checkpoint, in memory as the checkpoint holds them: ENTRY
 * bytes (checkpoint-codec.ts) in a few large Buffers ("slabs"), in code point
 * order, never changed. Nothing per key lives on the JS heap: an entry is its
 * slab and offset (6 bytes in two typed arrays), its key's hash (4 bytes, for
 * the next checkpoint) and a slot in an open-addressing hash table (an
 * Int32Array, and 16 bits of hash beside it) for point lookups: about 22
 * bytes per key in all. A key's value and revisions become JS objects only
 * when it is read. All of it is shared memory, which the worker thread that
 * writes a large checkpoint reads in place (checkpoint-keys-worker.ts).
 *
 * So loading a checkpoint is reading its file and one pass that checks each
 * entry and hashes its key, and a million keys take about a third of the
 * memory they take as JS strings, objects and Map entries; the garbage
 * collector never walks them. The index (store-index.ts) layers the changes
 * made since the checkpoint over it.
 */
import type { StoredEntry } from '../change';
import { ENTRY_HEADER_SIZE, entryAt, entryKeyAt, entryLeaseAt } from './checkpoint-codec';
import { SET_HEADER_SIZE, SET_LEASED_HEADER_SIZE, setRecordSize } from './record-codec';

/** Slots per key at most 1/MAX_LOAD: short probe sequences, for misses too (a new key's set looks it up first). */
const MAX_LOAD = 0.6;

const TWO_32 = 0x1_0000_0000;
/** The high half of a u64 at most this: the value is below 2^53, exact in a JS number. */
const MAX_HIGH = 0x1fffff;

function u32(buf: Buffer, i: number): number {
  return (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16)) + buf[i + 3] * 0x1000000;
}

/** Bytes of a key being looked up, UTF-8 encoded (grown for a longer key). */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Encodes `key` into `scratch` and returns its byte length. ASCII is copied
 * in JS: a native call per lookup would cost more than the lookup.
 */
function encodeKey(key: string): number {
  const n = key.length;
  if (n * 3 > scratch.length) scratch = Buffer.allocUnsafe(n * 3);
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return scratch.write(key, 0, 'utf8');
    scratch[i] = c;
  }
  return n;
}

/** Copies buf[start, start + n) into `scratch` and returns n. */
function copyKey(buf: Buffer, start: number, n: number): number {
  if (n > scratch.length) scratch = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) scratch[i] = buf[start + i];
  return n;
}

/** FNV-1a over bytes, then a final mix so that the low bits (the slot) depend on every byte. */
function hashBytes(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h;
}

/** Compares buf[start, start+length) with scratch[0, n) as bytes (= code point order for UTF-8). */
function compareWithScratch(buf: Buffer, start: number, length: number, n: number): number {
  const common = length < n ? length : n;
  for (let i = 0; i < common; i++) {
    const d = buf[start + i] - scratch[i];
    if (d !== 0) return d;
  }
  return length - n;
}

/**
 * 16 bits of a hash other than those that pick the slot, kept beside each
 * slot: a probe of another key is then almost always told apart without
 * touching that key's bytes (a cache miss each), so a miss (every new key's
 * set looks its key up first) costs about one.
 */
function tagOf(hash: number): number {
  return Math.imul(hash, 0x9e3779b1) >>> 16;
}

/**
 * Memory a key table lives in is shared (SharedArrayBuffer): a checkpoint's
 * keys are written by a worker thread (checkpoint-keys-worker.ts) that reads
 * the table before and hands the new one back, neither copied.
 */
export function sharedBytes(n: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(n));
}

function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

function sharedUint32(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(4 * n));
}

function sharedUint16(n: number): Uint16Array {
  return new Uint16Array(new SharedArrayBuffer(2 * n));
}

/** A KeyTable as plain data, for another thread (structured clone shares the SharedArrayBuffers, copying nothing else of size). */
export interface KeyTableParts {
  slabs: Uint8Array[];
  count: number;
  slabOf: Uint16Array;
  offsets: Uint32Array;
  hashes: Int32Array;
  slots: Int32Array;
  tags: Uint16Array;
  liveBytes: number;
  leased: number[];
}

function tableSize(keys: number): number {
  let size = 2;
  while (size * MAX_LOAD < keys) size *= 2;
  return size;
}

export class KeyTable {
  static readonly empty = new KeyTable(
    [],
    0,
    new Uint16Array(0),
    new Uint32Array(0),
    new Int32Array(0),
    new Int32Array(2),
    new Uint16Array(2),
    0,
    [],
  );

  private readonly mask: number;

  /** The table a worker thread sent (parts()). */
  static fromParts(p: KeyTableParts): KeyTable {
    const slabs = p.slabs.map((u) => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength)));
    return new KeyTable(slabs, p.count, p.slabOf, p.offsets, p.hashes, p.slots, p.tags, p.liveBytes, p.leased);
  }

  /** This table as plain data, for another thread; without `leased`, the list of leased positions is left out (empty). */
  parts(leased = true): KeyTableParts {
    return {
      slabs: [...this.slabs],
      count: this.count,
      slabOf: this.slabOf,
      offsets: this.offsets,
      hashes: this.hashes,
      slots: this.slots,
      tags: this.tags,
      liveBytes: this.liveBytes,
      leased: leased ? [...this.leased] : [],
    };
  }

  constructor(
    private readonly slabs: readonly Buffer[],
    readonly count: number,
    private readonly slabOf: Uint16Array,
    private readonly offsets: Uint32Array,
    /** Each entry's hash (hashBytes of its key): a checkpoint that copies the entry keeps it, not hashing the key again. */
    private readonly hashes: Int32Array,
    private readonly slots: Int32Array,
    /** tagOf() of the hash of the key in each slot. */
    private readonly tags: Uint16Array,
    /** Sum of the SET record sizes of the entries: their "live bytes" (store-index.ts entryRecordBytes). */
    readonly liveBytes: number,
    /** Positions of the entries attached to a lease. */
    readonly leased: readonly number[],
  ) {
    this.mask = slots.length - 1;
  }

  /** The position of `key`, or -1. */
  find(key: string): number {
    return this.findScratch(encodeKey(key));
  }

  /** The position of the key whose UTF-8 bytes are buf[start, start + n), or -1. */
  findBytes(buf: Buffer, start: number, n: number): number {
    return this.findScratch(copyKey(buf, start, n));
  }

  /** The position of the key in scratch[0, n), or -1. */
  private findScratch(n: number): number {
    const slots = this.slots;
    const tags = this.tags;
    const mask = this.mask;
    const hash = hashBytes(scratch, 0, n);
    const tag = tagOf(hash);
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const e = slots[slot];
      if (e === 0) return -1;
      if (tags[slot] !== tag) continue;
      const i = e - 1;
      const buf = this.slabs[this.slabOf[i]];
      const at = this.offsets[i];
      if (buf.readUInt32LE(at) === n && compareWithScratch(buf, at + ENTRY_HEADER_SIZE, n, n) === 0) return i;
    }
  }

  /** The first position whose key is at or after `key` in code point order (count if none). */
  seek(key: string): number {
    return this.seekScratch(encodeKey(key));
  }

  /** seek() of the key whose UTF-8 bytes are buf[start, start + n). */
  seekBytes(buf: Buffer, start: number, n: number): number {
    return this.seekScratch(copyKey(buf, start, n));
  }

  private seekScratch(n: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const buf = this.slabs[this.slabOf[mid]];
      const at = this.offsets[mid];
      if (compareWithScratch(buf, at + ENTRY_HEADER_SIZE, buf.readUInt32LE(at), n) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  key(i: number): string {
    return entryKeyAt(this.slabs[this.slabOf[i]], this.offsets[i]);
  }

  entry(i: number): StoredEntry {
    return entryAt(this.slabs[this.slabOf[i]], this.offsets[i]);
  }

  lease(i: number): number {
    return entryLeaseAt(this.slabs[this.slabOf[i]], this.offsets[i]);
  }

  /** Bytes of the SET record that would store entry i: its "live bytes" (store-index.ts entryRecordBytes). */
  recordBytes(i: number): number {
    const buf = this.slabs[this.slabOf[i]];
    const at = this.offsets[i];
    return setRecordSize(buf.readUInt32LE(at), buf.readUInt32LE(at + 4), entryLeaseAt(buf, at));
  }

  /** Bytes of the ENTRY at position i. */
  entrySize(i: number): number {
    const buf = this.slabs[this.slabOf[i]];
    const at = this.offsets[i];
    return ENTRY_HEADER_SIZE + u32(buf, at) + u32(buf, at + 4);
  }

  /**
   * The ENTRY bytes of positions i, i+1, ... before `limit` that lie back to
   * back in one slab, as many as fit in `maxBytes` (entry i however large):
   * buf[start, end), `count` entries. For copying many at once.
   */
  span(i: number, limit: number, maxBytes: number): { buf: Buffer; start: number; end: number; count: number } {
    const slab = this.slabOf[i];
    const buf = this.slabs[slab];
    const start = this.offsets[i];
    let end = start + this.entrySize(i);
    let j = i + 1;
    while (j < limit && this.slabOf[j] === slab && this.offsets[j] === end) {
      const next = end + ENTRY_HEADER_SIZE + u32(buf, end) + u32(buf, end + 4);
      if (next - start > maxBytes) break;
      end = next;
      j++;
    }
    return { buf, start, end, count: j - i };
  }

  /** hashBytes of the key at position i. */
  hashAt(i: number): number {
    return this.hashes[i];
  }

  /** The ENTRY bytes at position i, as they are in the checkpoint: for writing the next one without decoding. */
  raw(i: number): { buf: Buffer; start: number; end: number } {
    const buf = this.slabs[this.slabOf[i]];
    const start = this.offsets[i];
    return { buf, start, end: start + this.entrySize(i) };
  }
}

/** Entries of the hash table built between two steps of KeyTableBuilder.finishSharing. */
const STEP_ENTRIES = 65_536;

/**
 * Builds a KeyTable from checked ENTRY bytes added in key order (by a
 * checkpoint's reader or writer). Says which entry is out of order, since a
 * table that is not sorted would answer ranges wrongly.
 */
export class KeyTableBuilder {
  private readonly slabOf: Uint16Array;
  private readonly offsets: Uint32Array;
  /** Each entry's hash: finish() puts the entries in the hash table by it, and the table keeps it. */
  private readonly hashes: Int32Array;
  private count = 0;
  private liveBytes = 0;
  private readonly leased: number[] = [];
  private lastBuf: Buffer | undefined;
  private lastAt = 0;

  /**
   * `capacity`: the most entries that will be added; `slabs`: the Buffers
   * they are in (the caller may add more as it goes, at most 65,536).
   */
  constructor(
    private readonly capacity: number,
    private readonly slabs: readonly Buffer[],
  ) {
    this.slabOf = sharedUint16(capacity);
    this.offsets = sharedUint32(capacity);
    this.hashes = sharedInt32(capacity);
  }

  /**
   * Checks the ENTRY at offset `at` of slabs[slab] (ending by `end`, in a
   * checkpoint of revision `revision`: checkpoint-codec.ts checkEntry's
   * rules) and adds it; returns its size, or why it cannot be added (a bad
   * field, out of order, a duplicate key, more than the capacity). Inlined
   * byte arithmetic: this runs once per key of every checkpoint loaded.
   */
  add(slab: number, at: number, end: number, revision: number): number | string {
    const i = this.count;
    if (i === this.capacity) return 'more keys than expected';
    if (slab > 0xffff) return 'too many slabs';
    const buf = this.slabs[slab];
    if (end - at < ENTRY_HEADER_SIZE) return 'entry cut short';
    const keyBytes = u32(buf, at);
    const valueBytes = u32(buf, at + 4);
    const size = ENTRY_HEADER_SIZE + keyBytes + valueBytes;
    if (keyBytes === 0 || valueBytes === 0 || size > end - at) return 'entry lengths out of range';
    const createHigh = u32(buf, at + 12);
    const modHigh = u32(buf, at + 20);
    const leaseHigh = u32(buf, at + 32);
    if (createHigh > MAX_HIGH || modHigh > MAX_HIGH || leaseHigh > MAX_HIGH) return 'entry field out of range';
    const createRevision = createHigh * TWO_32 + u32(buf, at + 8);
    const modRevision = modHigh * TWO_32 + u32(buf, at + 16);
    if (!(createRevision >= 1 && createRevision <= modRevision && modRevision <= revision) || u32(buf, at + 24) === 0) {
      return 'entry revisions inconsistent';
    }
    const lease = leaseHigh * TWO_32 + u32(buf, at + 28);
    const keyStart = at + ENTRY_HEADER_SIZE;
    const keyEnd = keyStart + keyBytes;
    const prev = this.lastBuf;
    if (prev !== undefined) {
      const prevStart = this.lastAt + ENTRY_HEADER_SIZE;
      const prevBytes = u32(prev, this.lastAt);
      const common = prevBytes < keyBytes ? prevBytes : keyBytes;
      let d = 0;
      for (let j = 0; j < common && d === 0; j++) d = prev[prevStart + j] - buf[keyStart + j];
      if (d === 0) d = prevBytes - keyBytes;
      if (d >= 0) return d === 0 ? 'a key appears twice' : 'keys out of order';
    }
    this.lastBuf = buf;
    this.lastAt = at;
    this.slabOf[i] = slab;
    this.offsets[i] = at;
    this.hashes[i] = hashBytes(buf, keyStart, keyEnd);
    if (lease !== 0) this.leased.push(i);
    this.liveBytes += size - (ENTRY_HEADER_SIZE - (lease === 0 ? SET_HEADER_SIZE : SET_LEASED_HEADER_SIZE));
    this.count = i + 1;
    return size;
  }

  /**
   * Adds `count` entries of `from`, positions i, i+1, ..., copied back to back
   * to offset `at` of slabs[slab] (a run from KeyTable.span): they were checked
   * when `from` was built and are in key order among themselves, so only the
   * first is compared with the entry before it, and each keeps its hash.
   * This is most of a checkpoint at a million keys. Returns the run's bytes,
   * or why it cannot be added.
   */
  addCopied(slab: number, at: number, from: KeyTable, i: number, count: number): number | string {
    if (count === 0) return 0;
    const n = this.count;
    if (n + count > this.capacity) return 'more keys than expected';
    if (slab > 0xffff) return 'too many slabs';
    const buf = this.slabs[slab];
    const prev = this.lastBuf;
    if (prev !== undefined) {
      const prevStart = this.lastAt + ENTRY_HEADER_SIZE;
      const prevBytes = u32(prev, this.lastAt);
      const keyBytes = u32(buf, at);
      const keyStart = at + ENTRY_HEADER_SIZE;
      const common = prevBytes < keyBytes ? prevBytes : keyBytes;
      let d = 0;
      for (let j = 0; j < common && d === 0; j++) d = prev[prevStart + j] - buf[keyStart + j];
      if (d === 0) d = prevBytes - keyBytes;
      if (d >= 0) return d === 0 ? 'a key appears twice' : 'keys out of order';
    }
    let offset = at;
    let last = at;
    for (let k = 0; k < count; k++) {
      const size = ENTRY_HEADER_SIZE + u32(buf, offset) + u32(buf, offset + 4);
      const leased =
        buf[offset + 28] |
        buf[offset + 29] |
        buf[offset + 30] |
        buf[offset + 31] |
        buf[offset + 32] |
        buf[offset + 33] |
        buf[offset + 34] |
        buf[offset + 35];
      this.slabOf[n + k] = slab;
      this.offsets[n + k] = offset;
      this.hashes[n + k] = from.hashAt(i + k);
      if (leased !== 0) this.leased.push(n + k);
      this.liveBytes += size - (ENTRY_HEADER_SIZE - (leased === 0 ? SET_HEADER_SIZE : SET_LEASED_HEADER_SIZE));
      last = offset;
      offset += size;
    }
    this.lastBuf = buf;
    this.lastAt = last;
    this.count = n + count;
    return offset - at;
  }

  get size(): number {
    return this.count;
  }

  finish(): KeyTable {
    const steps = this.build();
    let step = steps.next();
    while (step.done !== true) step = steps.next();
    return step.value;
  }

  /** finish(), awaiting `between` every STEP_ENTRIES entries of the hash table: a million keys took 55 ms in one go (the checkpoint writer shares the event loop). */
  async finishSharing(between: () => Promise<void> | void): Promise<KeyTable> {
    const steps = this.build();
    let step = steps.next();
    while (step.done !== true) {
      await between();
      step = steps.next();
    }
    return step.value;
  }

  private *build(): Generator<void, KeyTable, void> {
    if (this.count === 0) return KeyTable.empty;
    const { slots, tags } = yield* this.hashTable();
    return new KeyTable([...this.slabs], this.count, this.slabOf, this.offsets, this.hashes, slots, tags, this.liveBytes, this.leased);
  }

  /**
   * The open-addressing table of the entries. Inserted in the order of their
   * slots, a region of the table at a time (a counting sort by the slot's
   * high bits first), so the writes stay in the CPU cache: inserted in key
   * order, every one would be a cache miss, most of the cost of a load.
   */
  private *hashTable(): Generator<void, { slots: Int32Array; tags: Uint16Array }, void> {
    const n = this.count;
    const slots = sharedInt32(tableSize(n));
    const tags = sharedUint16(slots.length);
    const mask = slots.length - 1;
    const bits = Math.log2(slots.length);
    // Regions of about 4096 slots (16 KiB).
    const shift = Math.max(0, bits - Math.min(16, Math.max(0, bits - 12)));
    const starts = new Int32Array((mask >>> shift) + 2);
    const hashes = this.hashes;
    for (let i = 0; i < n; i++) starts[((hashes[i] & mask) >>> shift) + 1]++;
    for (let r = 1; r < starts.length; r++) starts[r] += starts[r - 1];
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[starts[(hashes[i] & mask) >>> shift]++] = i;
    for (let k = 0; k < n; k++) {
      if (k % STEP_ENTRIES === STEP_ENTRIES - 1) yield;
      const i = order[k];
      let slot = hashes[i] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = i + 1;
      tags[slot] = tagOf(hashes[i]);
    }
    return { slots, tags };
  }
}
