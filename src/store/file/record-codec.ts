/**
 * Byte layout of data files (docs/storage-format.md is the prose version).
 * All integers are little-endian; CRCs are CRC-32 (IEEE 802.3, the zlib/PNG
 * polynomial 0xEDB88320 reflected) as computed by zlib.crc32.
 *
 * File header (24 bytes):
 *   0  8  magic "KVSTORE\0"
 *   8  2  format version (1)
 *   10 1  kind: 1 = log, 2 = snapshot
 *   11 1  reserved, 0
 *   12 8  base revision (u64): the store revision when the file was started
 *   20 4  CRC-32 of bytes 0..19
 *
 * Record (8-byte frame + body):
 *   0  4  CRC-32 of bytes 4..end of record (length field and body)
 *   4  4  body length (u32), bytes after offset 8
 *   8  1  type: 1 = SET, 2 = DELETE, 3 = CLEAR
 *   9  8  revision (u64)
 *   SET:    17 8 createRevision (u64), 25 4 version (u32), 29 4 key length (u32),
 *           33 key (UTF-8), then the value (JSON, UTF-8) to the end of the body
 *   DELETE: 17 key (UTF-8) to the end of the body
 *   CLEAR:  17 prefix (UTF-8, may be empty = all keys) to the end of the body
 */
import { crc32 } from 'node:zlib';

export const FILE_MAGIC = Buffer.from('KVSTORE\0', 'latin1');
export const FORMAT_VERSION = 1;
export const FILE_HEADER_SIZE = 24;

export enum FileKind {
  Log = 1,
  Snapshot = 2,
}

export enum RecordType {
  Set = 1,
  Delete = 2,
  Clear = 3,
}

export const FRAME_SIZE = 8;
/** Frame plus type and revision: the smallest valid record (a CLEAR of everything). */
export const MIN_RECORD_SIZE = 17;
export const SET_HEADER_SIZE = 33;

export interface FileHeader {
  kind: FileKind;
  baseRevision: number;
}

/**
 * A decoded record. readRecord fills one of these in place rather than
 * returning new objects, because replay decodes millions of records and
 * short-lived garbage at that rate costs more than the decoding.
 * For DELETE `key` is the key, for CLEAR it is the prefix.
 */
export interface DecodedRecord {
  type: RecordType;
  revision: number;
  createRevision: number;
  version: number;
  key: string;
  valueJson: string;
  /** Bytes of the whole record, frame included. */
  size: number;
}

export function emptyRecord(): DecodedRecord {
  return { type: RecordType.Set, revision: 0, createRevision: 0, version: 0, key: '', valueJson: '', size: 0 };
}

/**
 * CRC-32 of buf[start, end), the same value as zlib.crc32(buf.subarray(start, end)).
 * Slicing-by-8 in JS: replay checks a million short records, and there a
 * subarray plus a native call per record cost more than the CRC itself.
 */
export function crc32Of(buf: Buffer, start: number, end: number): number {
  const t = CRC_TABLES;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + buf[i + 4]] ^
      t[512 + buf[i + 5]] ^
      t[256 + buf[i + 6]] ^
      t[buf[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Eight 256-entry tables: [0] the usual byte-at-a-time table, [k] advances a byte k more positions. */
const CRC_TABLES = ((): Int32Array => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = t[(k - 1) * 256 + n] >>> 8 ^ t[t[(k - 1) * 256 + n] & 0xff];
  }
  return t;
})();

const TWO_32 = 0x1_0000_0000;

function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32LE(value % TWO_32, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

/** Reads a u64 as a number; NaN if it is beyond what a JS number holds exactly. */
function readU64(buf: Buffer, offset: number): number {
  const high = buf.readUInt32LE(offset + 4);
  if (high > 0x1fffff) return Number.NaN;
  return high * TWO_32 + buf.readUInt32LE(offset);
}

export function encodeFileHeader(header: FileHeader): Buffer {
  const buf = Buffer.alloc(FILE_HEADER_SIZE);
  FILE_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(FORMAT_VERSION, 8);
  buf.writeUInt8(header.kind, 10);
  writeU64(buf, header.baseRevision, 12);
  buf.writeUInt32LE(crc32(buf.subarray(0, 20)), 20);
  return buf;
}

/** Decodes a file header, or returns why it is not one. */
export function decodeFileHeader(buf: Buffer): FileHeader | string {
  if (buf.length < FILE_HEADER_SIZE) return `file header is ${buf.length} bytes, expected ${FILE_HEADER_SIZE}`;
  if (!buf.subarray(0, 8).equals(FILE_MAGIC)) return 'bad magic (not a kv data file)';
  if (buf.readUInt32LE(20) !== crc32(buf.subarray(0, 20))) return 'file header CRC mismatch';
  const version = buf.readUInt16LE(8);
  if (version !== FORMAT_VERSION) return `unsupported format version ${version}`;
  const kind = buf.readUInt8(10);
  if (kind !== FileKind.Log && kind !== FileKind.Snapshot) return `unknown file kind ${kind}`;
  const baseRevision = readU64(buf, 12);
  if (Number.isNaN(baseRevision)) return 'base revision out of range';
  return { kind, baseRevision };
}

export function setRecordSize(keyBytes: number, valueBytes: number): number {
  return SET_HEADER_SIZE + keyBytes + valueBytes;
}

export function deleteRecordSize(keyBytes: number): number {
  return MIN_RECORD_SIZE + keyBytes;
}

export function clearRecordSize(prefixBytes: number): number {
  return MIN_RECORD_SIZE + prefixBytes;
}

function sealRecord(buf: Buffer, offset: number, end: number, type: RecordType, revision: number): number {
  buf.writeUInt32LE(end - offset - FRAME_SIZE, offset + 4);
  buf[offset + 8] = type;
  writeU64(buf, revision, offset + 9);
  buf.writeUInt32LE(crc32Of(buf, offset + 4, end), offset);
  return end;
}

/**
 * Writes a SET record at `offset` (the caller sized `buf` with setRecordSize)
 * and returns the offset after it.
 */
export function writeSetRecord(
  buf: Buffer,
  offset: number,
  revision: number,
  createRevision: number,
  version: number,
  key: string,
  keyBytes: number,
  valueJson: string,
  valueBytes: number,
): number {
  writeU64(buf, createRevision, offset + 17);
  buf.writeUInt32LE(version, offset + 25);
  buf.writeUInt32LE(keyBytes, offset + 29);
  buf.write(key, offset + SET_HEADER_SIZE, keyBytes, 'utf8');
  buf.write(valueJson, offset + SET_HEADER_SIZE + keyBytes, valueBytes, 'utf8');
  return sealRecord(buf, offset, offset + SET_HEADER_SIZE + keyBytes + valueBytes, RecordType.Set, revision);
}

export function writeDeleteRecord(buf: Buffer, offset: number, revision: number, key: string, keyBytes: number): number {
  buf.write(key, offset + MIN_RECORD_SIZE, keyBytes, 'utf8');
  return sealRecord(buf, offset, offset + MIN_RECORD_SIZE + keyBytes, RecordType.Delete, revision);
}

export function writeClearRecord(
  buf: Buffer,
  offset: number,
  revision: number,
  prefix: string,
  prefixBytes: number,
): number {
  buf.write(prefix, offset + MIN_RECORD_SIZE, prefixBytes, 'utf8');
  return sealRecord(buf, offset, offset + MIN_RECORD_SIZE + prefixBytes, RecordType.Clear, revision);
}

/** Why readRecord could not decode a record; `short` means the bytes ran out before its end. */
export interface RecordProblem {
  short: boolean;
  reason: string;
}

/**
 * Decodes the record at `offset` into `out`, trusting nothing: the frame, the
 * CRC and every field are checked before use. Returns undefined on success.
 */
export function readRecord(buf: Buffer, offset: number, end: number, out: DecodedRecord): RecordProblem | undefined {
  if (end - offset < FRAME_SIZE) return { short: true, reason: 'record frame cut short' };
  const bodyLength = buf.readUInt32LE(offset + 4);
  const size = FRAME_SIZE + bodyLength;
  if (size < MIN_RECORD_SIZE) return { short: false, reason: `record body length ${bodyLength} too small` };
  if (end - offset < size) return { short: true, reason: `record of ${size} bytes cut short` };
  const recordEnd = offset + size;
  if (buf.readUInt32LE(offset) !== crc32Of(buf, offset + 4, recordEnd)) {
    return { short: false, reason: 'record CRC mismatch' };
  }
  const type = buf[offset + 8];
  const revision = readU64(buf, offset + 9);
  if (!(revision > 0)) return { short: false, reason: 'record revision out of range' };
  out.type = type;
  out.revision = revision;
  out.size = size;
  switch (type) {
    case RecordType.Set: {
      if (size < SET_HEADER_SIZE) return { short: false, reason: 'SET record too small' };
      const createRevision = readU64(buf, offset + 17);
      const version = buf.readUInt32LE(offset + 25);
      const keyBytes = buf.readUInt32LE(offset + 29);
      const keyEnd = offset + SET_HEADER_SIZE + keyBytes;
      if (keyBytes === 0 || keyEnd > recordEnd) return { short: false, reason: 'SET key length out of range' };
      if (!(createRevision > 0 && createRevision <= revision) || version === 0) {
        return { short: false, reason: 'SET revisions inconsistent' };
      }
      out.createRevision = createRevision;
      out.version = version;
      out.key = buf.toString('utf8', offset + SET_HEADER_SIZE, keyEnd);
      out.valueJson = buf.toString('utf8', keyEnd, recordEnd);
      return undefined;
    }
    case RecordType.Delete:
      if (size === MIN_RECORD_SIZE) return { short: false, reason: 'DELETE record without a key' };
      out.key = buf.toString('utf8', offset + MIN_RECORD_SIZE, recordEnd);
      return undefined;
    case RecordType.Clear:
      out.key = buf.toString('utf8', offset + MIN_RECORD_SIZE, recordEnd);
      return undefined;
    default:
      return { short: false, reason: `unknown record type ${type}` };
  }
}
