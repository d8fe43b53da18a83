/**
 * The history window's packed form (and a checkpoint's HISTORY_COLUMNS
 * blocks, since format version 7): a chunk of sets and deletes kept as two
 * columns of numbers and one run of text. Packing a chunk joins its keys and
 * values into one string and writes it with one call; the numbers go into
 * typed arrays. Nothing is moved byte by byte and no key is written twice,
 * which made packing about three times cheaper than the HISTORY layout
 * (packed-history.ts), where each change is a record with its entries. A
 * checkpoint copies a chunk's columns and text as they are.
 *
 * Per change, NUMBERS f64 (integers, exact below 2^53) and WORDS u32:
 *   numbers: revision, create_revision, lease, previous entry's
 *            create_revision, mod_revision and lease
 *   words:   text offset of the key, kind (1 = set, 2 = delete, 3 = set of a
 *            key that existed), key bytes, value bytes (0 for a delete),
 *            previous value bytes (0 for a set of a new key), version (0 for
 *            a delete), previous entry's version
 * The text holds each change's key, value and previous value (UTF-8), back
 * to back in change order. A set's entry has mod_revision = its revision.
 */
import os from 'node:os';
import type { KeyChange, StoredEntry } from '../change';
import type { PackedChanges } from '../feed/history-window';
import { utf16Units } from './checkpoint-codec';

export const NUMBERS = 6;
export const WORDS = 7;
/** Bytes of one change's numbers and words. */
export const COLUMN_BYTES = 8 * NUMBERS + 4 * WORDS;

export enum ColumnKind {
  Set = 1,
  Delete = 2,
  SetOverPrev = 3,
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

export class PackedColumns implements PackedChanges {
  constructor(
    readonly count: number,
    /** count × NUMBERS */
    readonly numbers: Float64Array,
    /** count × WORDS; text offsets relative to `text` */
    readonly words: Uint32Array,
    readonly text: Buffer,
    /**
     * Each change's keyChangeBytes, when the text is not all ASCII (which
     * decodes as latin1, cheaper): that measure counts UTF-16 units, which
     * the UTF-8 byte counts in `words` then do not give.
     */
    private readonly measures: Float64Array | undefined,
    /** The whole buffer from a ColumnsPool the columns and text lie in (packColumns), to give back once the chunk is let go of. */
    readonly slab?: Buffer,
  ) {}

  revisionAt(i: number): number {
    return this.numbers[i * NUMBERS];
  }

  bytesAt(i: number): number {
    if (this.measures !== undefined) return this.measures[i];
    const w = i * WORDS;
    return measure(this.words[w + 1], this.words[w + 2], this.words[w + 3], this.words[w + 4]);
  }

  /** Bytes of text of changes [from, to). */
  textBytes(from: number, to: number): number {
    const last = (to - 1) * WORDS;
    const words = this.words;
    return words[last] + words[last + 2] + words[last + 3] + words[last + 4] - words[from * WORDS];
  }

  changeAt(i: number): KeyChange {
    const n = i * NUMBERS;
    const w = i * WORDS;
    const numbers = this.numbers;
    const words = this.words;
    const encoding = this.measures === undefined ? 'latin1' : 'utf8';
    const keyAt = words[w];
    const valueAt = keyAt + words[w + 2];
    const prevAt = valueAt + words[w + 3];
    const key = this.text.toString(encoding, keyAt, valueAt);
    const revision = numbers[n];
    const kind = words[w + 1];
    const prev: StoredEntry | undefined =
      kind === ColumnKind.Set
        ? undefined
        : {
            valueJson: this.text.toString(encoding, prevAt, prevAt + words[w + 4]),
            createRevision: numbers[n + 3],
            modRevision: numbers[n + 4],
            version: words[w + 6],
            lease: numbers[n + 5],
          };
    if (kind === ColumnKind.Delete) return { type: 'delete', key, revision, prev: prev as StoredEntry };
    const entry: StoredEntry = {
      valueJson: this.text.toString(encoding, valueAt, prevAt),
      createRevision: numbers[n + 1],
      modRevision: revision,
      version: words[w + 5],
      lease: numbers[n + 2],
    };
    return { type: 'set', key, revision, entry, prev };
  }

  /**
   * Changes [from, to) as a HISTORY_COLUMNS block body after its count: text
   * bytes (u32), the numbers and words (little-endian), the text; text offsets
   * made relative to the first change's.
   */
  encodeRange(from: number, to: number, out: Buffer, at: number): number {
    const textFrom = this.words[from * WORDS];
    const textBytes = this.textBytes(from, to);
    out.writeUInt32LE(textBytes, at);
    at += 4;
    if (LITTLE_ENDIAN) {
      // Both columns as they are, then each change's text offset made relative (one word a change, not seven).
      const numbers = this.numbers.subarray(from * NUMBERS, to * NUMBERS);
      at += Buffer.from(numbers.buffer, numbers.byteOffset, numbers.byteLength).copy(out, at);
      const words = this.words.subarray(from * WORDS, to * WORDS);
      Buffer.from(words.buffer, words.byteOffset, words.byteLength).copy(out, at);
      for (let i = 0; i < to - from; i++) out.writeUInt32LE(words[i * WORDS] - textFrom, at + 4 * i * WORDS);
      at += words.byteLength;
    } else {
      for (let k = from * NUMBERS; k < to * NUMBERS; k++, at += 8) out.writeDoubleLE(this.numbers[k], at);
      for (let k = from * WORDS; k < to * WORDS; k++, at += 4) {
        out.writeUInt32LE(k % WORDS === 0 ? this.words[k] - textFrom : this.words[k], at);
      }
    }
    at += this.text.copy(out, at, textFrom, textFrom + textBytes);
    return at;
  }
}

/** Bytes of a HISTORY_COLUMNS block body after its count, for changes [from, to) of `packed`. */
export function encodedRangeBytes(packed: PackedColumns, from: number, to: number): number {
  return 4 + (to - from) * COLUMN_BYTES + packed.textBytes(from, to);
}

/**
 * Reads a HISTORY_COLUMNS block body (after its count) of `count` changes at
 * buf[at, end): the numbers and words are copied, the text stays in `buf`.
 * Checks every field a decode relies on; a string says what is wrong.
 */
export function decodeColumns(
  buf: Buffer,
  at: number,
  end: number,
  count: number,
  revisions: { after: number; atMost: number },
): PackedColumns | string {
  if (end - at < 4) return 'HISTORY_COLUMNS block cut short';
  const textBytes = buf.readUInt32LE(at);
  at += 4;
  if (end - at !== count * COLUMN_BYTES + textBytes) return 'HISTORY_COLUMNS block of the wrong size';
  const numbers = new Float64Array(count * NUMBERS);
  for (let k = 0; k < numbers.length; k++, at += 8) numbers[k] = buf.readDoubleLE(at);
  const words = new Uint32Array(count * WORDS);
  for (let k = 0; k < words.length; k++, at += 4) words[k] = buf.readUInt32LE(at);
  let textAt = 0;
  let last = revisions.after;
  for (let i = 0; i < count; i++) {
    const n = i * NUMBERS;
    const w = i * WORDS;
    for (let k = n; k < n + NUMBERS; k++)
      if (!Number.isSafeInteger(numbers[k]) || numbers[k] < 0) return 'HISTORY_COLUMNS number out of range';
    const revision = numbers[n];
    if (revision < last) return 'history out of revision order';
    if (revision > revisions.atMost) return 'history change newer than the checkpoint';
    last = revision;
    const kind = words[w + 1];
    if (kind !== ColumnKind.Set && kind !== ColumnKind.Delete && kind !== ColumnKind.SetOverPrev) return `history change of kind ${kind}`;
    if (words[w] !== textAt) return 'HISTORY_COLUMNS text out of place';
    if (words[w + 2] === 0) return 'history change with an empty key';
    const isSet = kind !== ColumnKind.Delete;
    const hasPrev = kind !== ColumnKind.Set;
    if (isSet !== (words[w + 3] > 0 && words[w + 5] > 0 && numbers[n + 1] >= 1 && numbers[n + 1] <= revision))
      return 'history entry malformed';
    // What a kind has not got is written as zeros: anything else is damage (or a writer's bug), not text to skip.
    if (!isSet && (words[w + 3] !== 0 || words[w + 5] !== 0 || numbers[n + 1] !== 0 || numbers[n + 2] !== 0))
      return 'history delete with a value';
    if (!hasPrev && (words[w + 4] !== 0 || words[w + 6] !== 0 || numbers[n + 3] !== 0 || numbers[n + 4] !== 0 || numbers[n + 5] !== 0))
      return 'history set of a new key with a previous entry';
    const prevOk =
      words[w + 4] > 0 && words[w + 6] > 0 && numbers[n + 3] >= 1 && numbers[n + 3] <= numbers[n + 4] && numbers[n + 4] < revision;
    if (hasPrev !== prevOk) return 'history previous entry malformed';
    textAt += words[w + 2] + words[w + 3] + words[w + 4];
  }
  if (textAt !== textBytes) return 'HISTORY_COLUMNS text of the wrong size';
  const text = buf.subarray(at, at + textBytes);
  let ascii = true;
  for (let k = 0; k < text.length; k++) {
    if (text[k] >= 0x80) {
      ascii = false;
      break;
    }
  }
  let measures: Float64Array | undefined;
  if (!ascii) {
    measures = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const w = i * WORDS;
      const keyAt = words[w];
      const valueAt = keyAt + words[w + 2];
      const prevAt = valueAt + words[w + 3];
      const prevEnd = prevAt + words[w + 4];
      measures[i] = measure(
        words[w + 1],
        utf16Units(text, keyAt, valueAt),
        utf16Units(text, valueAt, prevAt),
        utf16Units(text, prevAt, prevEnd),
      );
    }
  }
  return new PackedColumns(count, numbers, words, text, measures);
}

/**
 * keyChangeBytes of a change of this kind from the lengths of its key, value
 * and previous value (in UTF-16 units; for ASCII text, its bytes): each entry
 * 2 × (key + value) + 64, as storedEntryBytes counts it.
 */
function measure(kind: number, key: number, value: number, prev: number): number {
  let bytes = kind === ColumnKind.Delete ? 0 : 2 * (key + value) + 64;
  if (kind !== ColumnKind.Set) bytes += 2 * (key + prev) + 64;
  return bytes;
}

/**
 * Buffers of packed chunks the history window has let go of, for the next
 * chunks to reuse. A chunk lives about as long as a window's worth of
 * writes: long enough to be promoted, so its buffer is external memory that
 * only a full (mark-compact) collection gives back, and V8 starts one each
 * time enough such memory has been allocated since the last. At a few
 * hundred thousand writes a second a new buffer per chunk set off a full
 * collection every quarter second or so; reused, the window's turnover
 * allocates nothing.
 */
export class ColumnsPool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;

  /** A buffer of `bytes` (the start of a pooled one, or of a new one with room to spare), 8-byte aligned. */
  take(bytes: number): { buf: Buffer; slab: Buffer } {
    while (this.free.length > 0) {
      const slab = this.free.pop() as Buffer;
      this.freeBytes -= slab.length;
      // Too small for this chunk: left to the collector (a chunk of larger values comes now and then).
      if (slab.length >= bytes) return { buf: slab.subarray(0, bytes), slab };
    }
    // Room for chunks a quarter larger, so chunks of about the same values reuse each other's.
    const slab = Buffer.allocUnsafeSlow(Math.max(POOL_MIN_BYTES, bytes + (bytes >>> 2)));
    return { buf: slab.subarray(0, bytes), slab };
  }

  /** Takes back a buffer `take` gave (its chunk let go of by the window and no longer read). */
  give(slab: Buffer): void {
    if (this.freeBytes + slab.length > POOL_MAX_FREE_BYTES) return;
    this.free.push(slab);
    this.freeBytes += slab.length;
  }
}

/** The smallest buffer a pool makes. */
const POOL_MIN_BYTES = 64 * 1024;
/**
 * The most a pool keeps for reuse. The window lets go of chunks about as
 * fast as it packs them, but not while a checkpoint copies it: then they
 * come back all at once, when the checkpoint is written.
 */
const POOL_MAX_FREE_BYTES = 32 * 1024 * 1024;

/**
 * The most text packColumns joins into one string. V8 makes no string
 * longer than about 2^29 units: a chunk past it (large values, e.g. a
 * --max-value-bytes raised far above its default) is packed string by
 * string instead (packed-history.ts).
 */
export const MAX_JOINED_CHARS = 64 * 1024 * 1024;

/**
 * Packs a chunk of sets and deletes, into a buffer from `pool` if given;
 * undefined for a chunk with a Clear, or with more than MAX_JOINED_CHARS of
 * text (packed-history.ts packs those).
 */
export function packColumns(changes: readonly KeyChange[], pool?: ColumnsPool): PackedColumns | undefined {
  const n = changes.length;
  const parts = new Array<string>(3 * n);
  let chars = 0;
  for (let i = 0; i < n; i++) {
    const change = changes[i];
    if (change.type === 'clear') return undefined;
    const key = change.key;
    const value = change.type === 'set' ? change.entry.valueJson : '';
    const prev = change.prev === undefined ? '' : change.prev.valueJson;
    parts[3 * i] = key;
    parts[3 * i + 1] = value;
    parts[3 * i + 2] = prev;
    chars += key.length + value.length + prev.length;
  }
  if (chars > MAX_JOINED_CHARS) return undefined;
  const joined = parts.join('');
  const textBytes = Buffer.byteLength(joined, 'utf8');
  const ascii = textBytes === joined.length;
  const numbersBytes = 8 * NUMBERS * n;
  const bytes = numbersBytes + 4 * WORDS * n + textBytes;
  const { buf, slab } = pool === undefined ? { buf: Buffer.allocUnsafeSlow(bytes), slab: undefined } : pool.take(bytes);
  const numbers = new Float64Array(buf.buffer, buf.byteOffset, NUMBERS * n);
  const words = new Uint32Array(buf.buffer, buf.byteOffset + numbersBytes, WORDS * n);
  const text = buf.subarray(numbersBytes + 4 * WORDS * n);
  text.write(joined, 0, textBytes, ascii ? 'latin1' : 'utf8');
  let textAt = 0;
  for (let i = 0; i < n; i++) {
    const change = changes[i] as Exclude<KeyChange, { type: 'clear' }>;
    const o = i * NUMBERS;
    const w = i * WORDS;
    const keyBytes = ascii ? parts[3 * i].length : Buffer.byteLength(parts[3 * i], 'utf8');
    const valueBytes = ascii ? parts[3 * i + 1].length : Buffer.byteLength(parts[3 * i + 1], 'utf8');
    const prevBytes = ascii ? parts[3 * i + 2].length : Buffer.byteLength(parts[3 * i + 2], 'utf8');
    numbers[o] = change.revision;
    words[w] = textAt;
    words[w + 2] = keyBytes;
    words[w + 3] = valueBytes;
    words[w + 4] = prevBytes;
    textAt += keyBytes + valueBytes + prevBytes;
    if (change.type === 'set') {
      numbers[o + 1] = change.entry.createRevision;
      numbers[o + 2] = change.entry.lease;
      words[w + 1] = change.prev === undefined ? ColumnKind.Set : ColumnKind.SetOverPrev;
      words[w + 5] = change.entry.version;
    } else {
      numbers[o + 1] = 0;
      numbers[o + 2] = 0;
      words[w + 1] = ColumnKind.Delete;
      words[w + 5] = 0;
    }
    const prev = change.prev;
    if (prev === undefined) {
      numbers[o + 3] = 0;
      numbers[o + 4] = 0;
      numbers[o + 5] = 0;
      words[w + 6] = 0;
    } else {
      numbers[o + 3] = prev.createRevision;
      numbers[o + 4] = prev.modRevision;
      numbers[o + 5] = prev.lease;
      words[w + 6] = prev.version;
    }
  }
  let measures: Float64Array | undefined;
  if (!ascii) {
    measures = new Float64Array(n);
    for (let i = 0; i < n; i++)
      measures[i] = measure(words[i * WORDS + 1], parts[3 * i].length, parts[3 * i + 1].length, parts[3 * i + 2].length);
  }
  return new PackedColumns(n, numbers, words, text, measures, slab);
}
