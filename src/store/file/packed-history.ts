/**
 * The history a checkpoint carries (its HISTORY blocks), as the history
 * window's packed changes: the bytes stay in the Buffers the checkpoint was
 * read into, a change becomes a JS object only when a watcher reads it, and
 * the next checkpoint copies its bytes as they are.
 */
import type { KeyChange, StoredEntry } from '../change';
import type { PackedChanges } from '../feed/history-window';
import { ENTRY_HEADER_SIZE, HistoryKind, changeSize, decodeChangeAt, encodeChange } from './checkpoint-codec';

export class PackedHistory implements PackedChanges {
  private added = 0;
  private readonly slabOf: Uint16Array;
  private readonly offsets: Uint32Array;
  private readonly sizes: Uint32Array;
  private readonly revisions: Float64Array;

  constructor(
    readonly slabs: Buffer[],
    private readonly capacity: number,
  ) {
    this.slabOf = new Uint16Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.sizes = new Uint32Array(capacity);
    this.revisions = new Float64Array(capacity);
  }

  get count(): number {
    return this.added;
  }

  /** Adds the (checked) change at `offset` of slab `slab`, of `size` bytes; false if there is no room left. */
  add(slab: number, offset: number, size: number, revision: number): boolean {
    const i = this.added;
    if (i === this.capacity) return false;
    this.slabOf[i] = slab;
    this.offsets[i] = offset;
    this.sizes[i] = size;
    this.revisions[i] = revision;
    this.added = i + 1;
    return true;
  }

  revisionAt(i: number): number {
    return this.revisions[i];
  }

  bytesAt(i: number): number {
    // Decoded, each byte of key and value becomes about two (UTF-16), plus the objects: history-window.ts's measure.
    return 2 * this.sizes[i];
  }

  changeAt(i: number): KeyChange {
    return decodeChangeAt(this.slabs[this.slabOf[i]], this.offsets[i]);
  }

  /**
   * The encoded bytes of changes i, i+1, ... that lie back to back in one
   * slab, at most `maxCount` and as many as fit in `maxBytes` (change i
   * always, however large): buf[start, end), `count` changes.
   */
  run(i: number, maxBytes: number, maxCount: number): { buf: Buffer; start: number; end: number; count: number } {
    const slab = this.slabOf[i];
    const start = this.offsets[i];
    let end = start + this.sizes[i];
    let j = i + 1;
    const last = Math.min(this.added, i + maxCount);
    while (j < last && this.slabOf[j] === slab && this.offsets[j] === end && end + this.sizes[j] - start <= maxBytes) {
      end += this.sizes[j];
      j++;
    }
    return { buf: this.slabs[slab], start, end, count: j - i };
  }
}

/**
 * Packs a chunk of the window's changes into one buffer, in the HISTORY
 * change encoding (checkpoint-codec.ts encodeChange, byte for byte). Encoding
 * string by string costs more than the rest of a write; so the keys and
 * values are joined and UTF-8-encoded with one call, behind the space the
 * layout needs, and then moved into place with copyWithin.
 */
/** packHistory's scratch space, kept between chunks (the commit loop packs one chunk at a time). */
let packWork = Buffer.alloc(0);

export function packHistory(changes: readonly KeyChange[]): PackedHistory {
  const n = changes.length;
  // Clears (rare: they carry whole key sets) take the string-by-string path.
  if (changes.some((change) => change.type === 'clear')) return packEach(changes);
  const parts = new Array<string>(3 * n);
  for (let i = 0; i < n; i++) {
    const change = changes[i] as Exclude<KeyChange, { type: 'clear' }>;
    parts[3 * i] = change.key;
    parts[3 * i + 1] = change.type === 'set' ? change.entry.valueJson : '';
    parts[3 * i + 2] = change.prev === undefined ? '' : change.prev.valueJson;
  }
  const joined = parts.join('');
  const textBytes = Buffer.byteLength(joined, 'utf8');
  const ascii = textBytes === joined.length;
  const lengths = new Uint32Array(3 * n);
  let layout = 0;
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < 3; s++) lengths[3 * i + s] = ascii ? parts[3 * i + s].length : Buffer.byteLength(parts[3 * i + s], 'utf8');
    const key = lengths[3 * i];
    const change = changes[i];
    layout += 17 + key;
    if (change.type === 'set') layout += ENTRY_HEADER_SIZE + key + lengths[3 * i + 1];
    if (change.type !== 'clear' && change.prev !== undefined) layout += ENTRY_HEADER_SIZE + key + lengths[3 * i + 2];
  }
  // The layout is written from the front; the text it copies from always lies behind it.
  if (packWork.length < layout + textBytes) packWork = Buffer.allocUnsafeSlow(Math.max(layout + textBytes, 2 * packWork.length));
  const work = packWork;
  work.write(joined, layout, textBytes, 'utf8');
  const packed = new PackedHistory([], n);
  let text = layout;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const change = changes[i] as Exclude<KeyChange, { type: 'clear' }>;
    const start = at;
    const keyBytes = lengths[3 * i];
    const keyAt = text;
    const valueAt = keyAt + keyBytes;
    const prevAt = valueAt + lengths[3 * i + 1];
    text = prevAt + lengths[3 * i + 2];
    work[at] = change.type === 'set' ? HistoryKind.Set : HistoryKind.Delete;
    putU64(work, at + 1, change.revision);
    putU32(work, at + 9, keyBytes);
    work.copyWithin(at + 13, keyAt, valueAt);
    at += 13 + keyBytes;
    putU32(work, at, change.type === 'set' && change.prev !== undefined ? 2 : 1);
    at += 4;
    if (change.type === 'set') at = placeEntry(work, at, keyAt, keyBytes, valueAt, prevAt, change.entry);
    if (change.prev !== undefined) at = placeEntry(work, at, keyAt, keyBytes, prevAt, text, change.prev);
    packed.add(0, start, at - start, change.revision);
  }
  // Only the layout is kept: a copy of exactly its size.
  const slab = Buffer.allocUnsafeSlow(layout);
  work.copy(slab, 0, 0, layout);
  packed.slabs.push(slab);
  return packed;
}

/** Writes an ENTRY at `at` whose key and value are already in `work` (behind `at`); returns the offset after it. */
function placeEntry(
  work: Buffer,
  at: number,
  keyAt: number,
  keyBytes: number,
  valueAt: number,
  valueEnd: number,
  entry: StoredEntry,
): number {
  putU32(work, at, keyBytes);
  putU32(work, at + 4, valueEnd - valueAt);
  putU64(work, at + 8, entry.createRevision);
  putU64(work, at + 16, entry.modRevision);
  putU32(work, at + 24, entry.version);
  putU64(work, at + 28, entry.lease);
  work.copyWithin(at + ENTRY_HEADER_SIZE, keyAt, keyAt + keyBytes);
  work.copyWithin(at + ENTRY_HEADER_SIZE + keyBytes, valueAt, valueEnd);
  return at + ENTRY_HEADER_SIZE + keyBytes + (valueEnd - valueAt);
}

// Plain byte stores: Buffer's writeUInt32LE checks its arguments at every call, and a chunk makes a dozen per change.
function putU32(buf: Buffer, at: number, value: number): void {
  buf[at] = value;
  buf[at + 1] = value >>> 8;
  buf[at + 2] = value >>> 16;
  buf[at + 3] = value >>> 24;
}

/** A u64 little-endian, for values up to 2^53 (revisions, lease ids); those below 2^32 without a division (a `%` per field cost about a tenth of the packing). */
function putU64(buf: Buffer, at: number, value: number): void {
  if (value <= 0xffff_ffff) {
    putU32(buf, at, value);
    putU32(buf, at + 4, 0);
    return;
  }
  const high = Math.floor(value / 0x1_0000_0000);
  putU32(buf, at, value - high * 0x1_0000_0000);
  putU32(buf, at + 4, high);
}

/** Packs change by change (encodeChange). */
function packEach(changes: readonly KeyChange[]): PackedHistory {
  let total = 0;
  for (const change of changes) total += changeSize(change);
  const slab = Buffer.allocUnsafeSlow(total);
  const packed = new PackedHistory([slab], changes.length);
  let at = 0;
  for (const change of changes) {
    const end = encodeChange(slab, at, change);
    packed.add(0, at, end - at, change.revision);
    at = end;
  }
  return packed;
}
