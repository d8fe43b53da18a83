/**
 * Byte layout of a checkpoint: the snapshot file of format version 5
 * (docs/storage-format.md, "Checkpoint"). Where an older snapshot is one
 * SET record per key, replayed record by record, a checkpoint is laid out to
 * be loaded with a few large reads and no per-key objects: the live keys in
 * code point order, packed into KEYS blocks of about 1 MiB, each block one
 * CRC-framed record; then the recent history of changes (for watchers) in
 * HISTORY and HISTORY_COLUMNS blocks; then a fixed-size END record that says how many of each
 * the file holds, so a reader can size its tables before it reads a block.
 *
 * Blocks use the record frame of record-codec.ts (CRC-32 of length and body,
 * body length, type, revision); their revision is the checkpoint's revision.
 *
 * ENTRY (a key and its stored state; in KEYS blocks and in history):
 *   0  4  key length K (u32, ≥ 1)
 *   4  4  value length V (u32, ≥ 1)
 *   8  8  create_revision (u64)
 *   16 8  mod_revision (u64)
 *   24 4  version (u32, ≥ 1)
 *   28 8  lease id (u64; 0 = none)
 *   36 K  key (UTF-8), then V bytes of value (JSON, UTF-8)
 *
 * KEYS (type 8):    17 4 entry count N (≥ 1), then N entries.
 * HISTORY (type 9): 17 4 change count N (≥ 1), then N changes:
 *   0  1  kind: 1 = set, 2 = delete, 3 = clear
 *   1  8  revision (u64)
 *   9  4  length P of the key (set, delete) or prefix (clear)
 *   13 P  the key or prefix (UTF-8)
 *   13+P 4 entry count E, then E entries: set, the new entry and then the
 *         previous one if the key existed (E = 1 or 2); delete, the entry
 *         deleted (E = 1); clear, every key removed with its entry
 * HISTORY_COLUMNS (type 12, since format version 7): 17 4 change count N
 *   (≥ 1), then sets and deletes as packed-columns.ts lays them out:
 *   21 4  text bytes T
 *   25    N × 6 numbers (f64, little-endian), then N × 7 words (u32), then T
 *         bytes of text. HISTORY and HISTORY_COLUMNS blocks may alternate;
 *         together they hold the history in revision order.
 * END (type 10, always 45 bytes, last in the file):
 *   17 8  keys in the KEYS blocks (u64)
 *   25 8  changes in the history blocks (u64)
 *   33 8  history-from revision (u64): the history holds every change from
 *         this revision up to the checkpoint's; one past the checkpoint's
 *         revision if it holds none
 *   41 4  LEASE_GRANT records (u32)
 */
import { crc32 } from 'node:zlib';
import type { KeyChange, StoredEntry } from '../change';
import { FRAME_SIZE, MIN_RECORD_SIZE, readU64, writeU64 } from './record-codec';

export enum BlockType {
  Keys = 8,
  History = 9,
  End = 10,
  /** Since format version 7 (packed-columns.ts); 11 is PRIVATE_LEASE_GRANT. */
  HistoryColumns = 12,
}

export const ENTRY_HEADER_SIZE = 36;
/** Frame, type, revision and the u32 count: where a block's first entry or change starts. */
export const BLOCK_HEADER_SIZE = MIN_RECORD_SIZE + 4;
export const END_RECORD_SIZE = 45;
/** A KEYS or HISTORY block is closed once it passes this many bytes (one larger entry gets a block of its own). */
export const BLOCK_TARGET_BYTES = 1024 * 1024;

export enum HistoryKind {
  Set = 1,
  Delete = 2,
  Clear = 3,
}

const TWO_32 = 0x1_0000_0000;

export function entrySize(keyBytes: number, valueBytes: number): number {
  return ENTRY_HEADER_SIZE + keyBytes + valueBytes;
}

/** Writes an ENTRY at `offset` (the caller sized `buf` with entrySize); returns the offset after it. */
export function writeEntry(buf: Buffer, offset: number, key: string, keyBytes: number, entry: StoredEntry, valueBytes: number): number {
  buf.writeUInt32LE(keyBytes, offset);
  buf.writeUInt32LE(valueBytes, offset + 4);
  writeU64(buf, entry.createRevision, offset + 8);
  writeU64(buf, entry.modRevision, offset + 16);
  buf.writeUInt32LE(entry.version, offset + 24);
  writeU64(buf, entry.lease, offset + 28);
  let at = offset + ENTRY_HEADER_SIZE;
  at += buf.write(key, at, keyBytes, 'utf8');
  at += buf.write(entry.valueJson, at, valueBytes, 'utf8');
  return at;
}

/**
 * Checks the ENTRY at `offset`, which must end by `end` and belong to a
 * checkpoint of revision `revision`; returns its size, or why it is not one.
 */
export function checkEntry(buf: Buffer, offset: number, end: number, revision: number): number | string {
  if (end - offset < ENTRY_HEADER_SIZE) return 'entry cut short';
  const keyBytes = buf.readUInt32LE(offset);
  const valueBytes = buf.readUInt32LE(offset + 4);
  const size = ENTRY_HEADER_SIZE + keyBytes + valueBytes;
  if (keyBytes === 0 || valueBytes === 0 || size > end - offset) return 'entry lengths out of range';
  const createRevision = readU64(buf, offset + 8);
  const modRevision = readU64(buf, offset + 16);
  if (!(createRevision >= 1 && createRevision <= modRevision && modRevision <= revision) || buf.readUInt32LE(offset + 24) === 0) {
    return 'entry revisions inconsistent';
  }
  if (Number.isNaN(readU64(buf, offset + 28))) return 'entry lease id out of range';
  return size;
}

/** The stored state of the (checked) ENTRY at `offset`: its value decoded from UTF-8. */
export function entryAt(buf: Buffer, offset: number): StoredEntry {
  const keyEnd = offset + ENTRY_HEADER_SIZE + buf.readUInt32LE(offset);
  return {
    valueJson: buf.toString('utf8', keyEnd, keyEnd + buf.readUInt32LE(offset + 4)),
    createRevision: buf.readUInt32LE(offset + 12) * TWO_32 + buf.readUInt32LE(offset + 8),
    modRevision: buf.readUInt32LE(offset + 20) * TWO_32 + buf.readUInt32LE(offset + 16),
    version: buf.readUInt32LE(offset + 24),
    lease: buf.readUInt32LE(offset + 32) * TWO_32 + buf.readUInt32LE(offset + 28),
  };
}

export function entryKeyAt(buf: Buffer, offset: number): string {
  const keyStart = offset + ENTRY_HEADER_SIZE;
  return buf.toString('utf8', keyStart, keyStart + buf.readUInt32LE(offset));
}

export function entryLeaseAt(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset + 32) * TWO_32 + buf.readUInt32LE(offset + 28);
}

export function entrySizeAt(buf: Buffer, offset: number): number {
  return ENTRY_HEADER_SIZE + buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4);
}

/** Starts a KEYS or HISTORY block at `offset`; sealBlock fills in its frame once its contents are written. */
export function blockBodyStart(offset: number): number {
  return offset + BLOCK_HEADER_SIZE;
}

/** Completes the block that starts at `offset` and ends at `end`, holding `count` entries or changes. */
export function sealBlock(buf: Buffer, offset: number, end: number, type: BlockType, revision: number, count: number): number {
  buf.writeUInt32LE(end - offset - FRAME_SIZE, offset + 4);
  buf[offset + 8] = type;
  writeU64(buf, revision, offset + 9);
  buf.writeUInt32LE(count, offset + 17);
  buf.writeUInt32LE(crc32(buf.subarray(offset + 4, end)), offset);
  return end;
}

export interface CheckpointEnd {
  revision: number;
  keys: number;
  changes: number;
  historyFrom: number;
  leases: number;
}

export function encodeEnd(end: CheckpointEnd): Buffer {
  const buf = Buffer.alloc(END_RECORD_SIZE);
  buf.writeUInt32LE(END_RECORD_SIZE - FRAME_SIZE, 4);
  buf[8] = BlockType.End;
  writeU64(buf, end.revision, 9);
  writeU64(buf, end.keys, 17);
  writeU64(buf, end.changes, 25);
  writeU64(buf, end.historyFrom, 33);
  buf.writeUInt32LE(end.leases, 41);
  buf.writeUInt32LE(crc32(buf.subarray(4, END_RECORD_SIZE)), 0);
  return buf;
}

/** Decodes the END record (the last END_RECORD_SIZE bytes of the file), or says why it is not one. */
export function decodeEnd(buf: Buffer): CheckpointEnd | string {
  if (buf.length !== END_RECORD_SIZE) return 'END record cut short';
  if (buf.readUInt32LE(4) !== END_RECORD_SIZE - FRAME_SIZE || buf[8] !== BlockType.End) return 'no END record at the end of the file';
  if (buf.readUInt32LE(0) !== crc32(buf.subarray(4))) return 'END record CRC mismatch';
  const end = {
    revision: readU64(buf, 9),
    keys: readU64(buf, 17),
    changes: readU64(buf, 25),
    historyFrom: readU64(buf, 33),
    leases: buf.readUInt32LE(41),
  };
  if (Object.values(end).some(Number.isNaN) || end.historyFrom < 1 || end.historyFrom > end.revision + 1) {
    return 'END record fields out of range';
  }
  return end;
}

/** Bytes a history change takes (encodeChange writes exactly this many). */
export function changeSize(change: KeyChange): number {
  switch (change.type) {
    case 'set': {
      const keyBytes = Buffer.byteLength(change.key, 'utf8');
      let size = 17 + keyBytes + entrySize(keyBytes, Buffer.byteLength(change.entry.valueJson, 'utf8'));
      if (change.prev !== undefined) size += entrySize(keyBytes, Buffer.byteLength(change.prev.valueJson, 'utf8'));
      return size;
    }
    case 'delete': {
      const keyBytes = Buffer.byteLength(change.key, 'utf8');
      return 17 + keyBytes + entrySize(keyBytes, Buffer.byteLength(change.prev.valueJson, 'utf8'));
    }
    case 'clear': {
      let size = 17 + Buffer.byteLength(change.prefix, 'utf8');
      for (const [key, entry] of change.removed)
        size += entrySize(Buffer.byteLength(key, 'utf8'), Buffer.byteLength(entry.valueJson, 'utf8'));
      return size;
    }
  }
}

/** Writes a history change at `offset` (sized with changeSize); returns the offset after it. */
export function encodeChange(buf: Buffer, offset: number, change: KeyChange): number {
  const put = (at: number, key: string, entry: StoredEntry): number =>
    writeEntry(buf, at, key, Buffer.byteLength(key, 'utf8'), entry, Buffer.byteLength(entry.valueJson, 'utf8'));
  const kind = change.type === 'set' ? HistoryKind.Set : change.type === 'delete' ? HistoryKind.Delete : HistoryKind.Clear;
  const name = change.type === 'clear' ? change.prefix : change.key;
  buf[offset] = kind;
  writeU64(buf, change.revision, offset + 1);
  const nameBytes = buf.write(name, offset + 13, 'utf8');
  buf.writeUInt32LE(nameBytes, offset + 9);
  let at = offset + 13 + nameBytes;
  const countAt = at;
  at += 4;
  let count = 0;
  switch (change.type) {
    case 'set':
      at = put(at, change.key, change.entry);
      count = 1;
      if (change.prev !== undefined) {
        at = put(at, change.key, change.prev);
        count = 2;
      }
      break;
    case 'delete':
      at = put(at, change.key, change.prev);
      count = 1;
      break;
    case 'clear':
      for (const [key, entry] of change.removed) at = put(at, key, entry);
      count = change.removed.length;
      break;
  }
  buf.writeUInt32LE(count, countAt);
  return at;
}

/**
 * Checks the history change at `offset` (ending by `end`, in a checkpoint of
 * revision `revision`); returns its size and revision, or why it is not one.
 */
export function checkChange(buf: Buffer, offset: number, end: number, revision: number): { size: number; revision: number } | string {
  if (end - offset < 17) return 'history change cut short';
  const kind = buf[offset];
  if (kind !== HistoryKind.Set && kind !== HistoryKind.Delete && kind !== HistoryKind.Clear) return `unknown history change kind ${kind}`;
  const changeRevision = readU64(buf, offset + 1);
  if (!(changeRevision >= 1 && changeRevision <= revision)) return 'history change revision out of range';
  const nameBytes = buf.readUInt32LE(offset + 9);
  if (nameBytes === 0 && kind !== HistoryKind.Clear) return 'history change without a key';
  let at = offset + 13 + nameBytes;
  if (at + 4 > end) return 'history change cut short';
  const count = buf.readUInt32LE(at);
  at += 4;
  if (kind === HistoryKind.Set ? count !== 1 && count !== 2 : kind === HistoryKind.Delete ? count !== 1 : count === 0) {
    return 'history change entry count out of range';
  }
  for (let i = 0; i < count; i++) {
    const size = checkEntry(buf, at, end, revision);
    if (typeof size === 'string') return size;
    at += size;
  }
  return { size: at - offset, revision: changeRevision };
}

/**
 * keyChangeBytes (change.ts) of the history change at `offset` (accepted by
 * checkChange), read off its bytes: what decodeChangeAt then measuring
 * would give, without making its strings.
 */
export function changeBytesAt(buf: Buffer, offset: number): number {
  const kind = buf[offset];
  const nameBytes = buf.readUInt32LE(offset + 9);
  const nameUnits = utf16Units(buf, offset + 13, offset + 13 + nameBytes);
  let at = offset + 13 + nameBytes;
  const count = buf.readUInt32LE(at);
  at += 4;
  // Each entry as storedEntryBytes counts it: 2 × (key + value) + 64, its key the change's but in a Clear.
  let bytes = kind === HistoryKind.Clear ? 2 * nameUnits + 64 : 0;
  for (let i = 0; i < count; i++) {
    const keyStart = at + ENTRY_HEADER_SIZE;
    const keyEnd = keyStart + buf.readUInt32LE(at);
    const valueUnits = utf16Units(buf, keyEnd, keyEnd + buf.readUInt32LE(at + 4));
    bytes += 2 * ((kind === HistoryKind.Clear ? utf16Units(buf, keyStart, keyEnd) : nameUnits) + valueUnits) + 64;
    at += entrySizeAt(buf, at);
  }
  return bytes;
}

/**
 * The length in UTF-16 units of the string that UTF-8 buf[from, to)
 * decodes to: one per character, two for one past U+FFFF (a 4-byte
 * sequence). The text was written from strings (a lone surrogate as
 * U+FFFD, one unit either way).
 */
export function utf16Units(buf: Buffer, from: number, to: number): number {
  let units = 0;
  for (let k = from; k < to; k++) {
    const byte = buf[k];
    if ((byte & 0xc0) !== 0x80) units += byte >= 0xf0 ? 2 : 1;
  }
  return units;
}

/** Decodes a history change that checkChange accepted. */
export function decodeChangeAt(buf: Buffer, offset: number): KeyChange {
  const kind = buf[offset];
  const revision = buf.readUInt32LE(offset + 5) * TWO_32 + buf.readUInt32LE(offset + 1);
  const nameBytes = buf.readUInt32LE(offset + 9);
  const name = buf.toString('utf8', offset + 13, offset + 13 + nameBytes);
  let at = offset + 13 + nameBytes;
  const count = buf.readUInt32LE(at);
  at += 4;
  if (kind === HistoryKind.Set) {
    const entry = entryAt(buf, at);
    const prev = count === 2 ? entryAt(buf, at + entrySizeAt(buf, at)) : undefined;
    return { type: 'set', key: name, revision, entry, prev };
  }
  if (kind === HistoryKind.Delete) return { type: 'delete', key: name, revision, prev: entryAt(buf, at) };
  const removed: Array<[string, StoredEntry]> = [];
  for (let i = 0; i < count; i++) {
    removed.push([entryKeyAt(buf, at), entryAt(buf, at)]);
    at += entrySizeAt(buf, at);
  }
  return { type: 'clear', prefix: name, revision, removed };
}
