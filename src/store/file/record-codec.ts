/**
 * Byte layout of data files (docs/storage-format.md is the prose version).
 * All integers are little-endian; CRCs are CRC-32 (IEEE 802.3, the zlib/PNG
 * polynomial 0xEDB88320 reflected) as computed by zlib.crc32.
 *
 * File header (32 bytes):
 *   0  8  magic "KVSTORE\0"
 *   8  2  format version (7; versions 3 to 6 are read too)
 *   10 1  kind: 1 = log, 2 = snapshot
 *   11 1  reserved, 0
 *   12 8  base revision (u64): the store revision when the file was started
 *   20 8  file nonce: 8 random bytes chosen when the file was created
 *   28 4  CRC-32 of bytes 0..27
 *
 * Record (8-byte frame + body):
 *   0  4  CRC-32 of bytes 4..end of record (length field and body)
 *   4  4  body length (u32), bytes after offset 8
 *   8  1  type: 1 = SET, 2 = DELETE, 3 = CLEAR, 4 = BATCH, 5 = SET_LEASED,
 *           6 = LEASE_GRANT, 7 = LEASE_REVOKE, 11 = PRIVATE_LEASE_GRANT
 *           (8, 9 and 10 are checkpoint blocks: checkpoint-codec.ts)
 *   9  8  revision (u64; at least 1, except the lease records, which
 *           which carry the store revision at the time, and a BATCH of only
 *           those: they may be 0)
 *   SET:    17 8 createRevision (u64), 25 4 version (u32), 29 4 key length (u32),
 *           33 key (UTF-8), then the value (JSON, UTF-8) to the end of the body
 *   SET_LEASED: as SET, with 33 8 lease id (u64) before the key at 41
 *   LEASE_GRANT:  (body length exactly 25) 17 8 lease id (u64), 25 8 ttl ms (u64)
 *   PRIVATE_LEASE_GRANT: as LEASE_GRANT, of a private lease (made by a set
 *           with ttlMs for its one key; revoked when the key stops using it)
 *   LEASE_REVOKE: (body length exactly 17) 17 8 lease id (u64); the lease's
 *           keys are deleted by DELETE records of the same revision in the
 *           same batch
 *   DELETE: 17 key (UTF-8) to the end of the body
 *   CLEAR:  17 prefix (UTF-8, may be empty = all keys) to the end of the body
 *   BATCH:  (body length exactly 29; revision = that of the batch's last record)
 *           17 4 batch bytes (u32): bytes of the records that follow and belong to it
 *           21 8 synced-through (u64): every byte of the log before this offset
 *                was durable (a completed fdatasync) when the batch was written
 *           29 8 the file nonce of the log it was written to (from the file
 *                header): a BATCH record with any other nonce is not one of
 *                this log's, e.g. bytes a client put in a key or value
 *
 * A log is the header and then batches: a BATCH record followed by its
 * records. A snapshot of version 5 or later is a checkpoint (checkpoint-codec.ts):
 * the live leases (LEASE_GRANT, PRIVATE_LEASE_GRANT), then KEYS, HISTORY and END blocks. A
 * snapshot of version 3 or 4 is the header and then, without batches, the
 * live leases (LEASE_GRANT) and the live keys (SET and SET_LEASED).
 *
 * Version 6 added PRIVATE_LEASE_GRANT (in logs and checkpoints); a log of
 * an older version is never appended to (log-writer.ts openActiveLog starts
 * a new one), so a file's version bounds the record types it holds
 * (firstVersionOf: a reader refuses a newer type in an older file). Builds
 * of versions 4 and 5 did append to a version 3 log, so the lease records
 * of version 4 are read in version 3 logs too.
 * Version 5 changed snapshots into checkpoints; its logs are those of
 * version 4. Version 4 added SET_LEASED, LEASE_GRANT and LEASE_REVOKE;
 * version 3 files (which hold none) read the same. A reader of an older
 * version refuses newer files by their header.
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Change, StoredEntry } from '../change';

export const FILE_MAGIC = Buffer.from('KVSTORE\0', 'latin1');
/**
 * 7: checkpoints carry packed history as HISTORY_COLUMNS blocks. 6: private
 * leases (PRIVATE_LEASE_GRANT). 5: snapshots are checkpoints. 4: lease records. 3: a file nonce in the
 * header, repeated in every BATCH record. Version 2 (batches without a
 * nonce) and version 1 (no batches) were never released.
 */
export const FORMAT_VERSION = 7;
/** The first version whose snapshots are checkpoints. */
export const CHECKPOINT_VERSION = 5;
/** The versions this build reads. */
const READABLE_VERSIONS: readonly number[] = [3, 4, 5, 6, 7];
export const FILE_HEADER_SIZE = 32;
/** Bytes of the random file nonce (file header offset 20, BATCH record offset 29). */
export const NONCE_SIZE = 8;
const HEADER_NONCE_OFFSET = 20;
const HEADER_CRC_OFFSET = 28;
const BATCH_NONCE_OFFSET = 29;

export enum FileKind {
  Log = 1,
  Snapshot = 2,
}

export enum RecordType {
  Set = 1,
  Delete = 2,
  Clear = 3,
  Batch = 4,
  SetLeased = 5,
  LeaseGrant = 6,
  LeaseRevoke = 7,
  /** Since version 6: a LEASE_GRANT of a private lease (a set's ttlMs). */
  PrivateLeaseGrant = 11,
}

/**
 * The first format version whose files hold records (or checkpoint blocks)
 * of `type`: a file's version bounds the types it holds, so a newer type in
 * an older file is damage, or a writer's bug, not data to read.
 */
export function firstVersionOf(type: number): number {
  switch (type) {
    // SET_LEASED, LEASE_GRANT and LEASE_REVOKE came with version 4, but builds of versions 4 and 5 appended to the
    // newest log whatever its version: a version 3 log may hold them.
    case RecordType.PrivateLeaseGrant:
      return 6;
    // HISTORY_COLUMNS, a checkpoint block (checkpoint-codec.ts).
    case 12:
      return 7;
    default:
      return 3;
  }
}

/** Why a record of `type` may not be in a file of `version`, or undefined if it may. */
export function typeNewerThanFile(type: number, version: number): string | undefined {
  const since = firstVersionOf(type);
  return since > version ? `record type ${type} in a file of format version ${version} (first written by version ${since})` : undefined;
}

/** Whether a record type grants a lease (LEASE_GRANT, or PRIVATE_LEASE_GRANT: the same layout). */
export function isLeaseGrant(type: number): boolean {
  return type === RecordType.LeaseGrant || type === RecordType.PrivateLeaseGrant;
}

export const FRAME_SIZE = 8;
/** Frame plus type and revision: the smallest valid record (a CLEAR of everything). */
export const MIN_RECORD_SIZE = 17;
export const SET_HEADER_SIZE = 33;
export const SET_LEASED_HEADER_SIZE = 41;
export const LEASE_GRANT_RECORD_SIZE = 33;
export const LEASE_REVOKE_RECORD_SIZE = 25;
/** A BATCH record is always this size. */
export const BATCH_RECORD_SIZE = 37;

export interface FileHeader {
  /** FORMAT_VERSION when written; any of READABLE_VERSIONS when read. */
  version: number;
  kind: FileKind;
  baseRevision: number;
  /** NONCE_SIZE random bytes (newFileNonce()); every BATCH record of a log repeats them. */
  nonce: Buffer;
}

/** A fresh random file nonce for a new data file. */
export function newFileNonce(): Buffer {
  return randomBytes(NONCE_SIZE);
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
  /** BATCH: bytes of the records that follow it and belong to the batch. */
  batchBytes: number;
  /** BATCH: the log was durable up to this file offset when the batch was written. */
  syncedThrough: number;
  /** SET_LEASED, LEASE_GRANT, LEASE_REVOKE: the lease id (0 for a plain SET). */
  lease: number;
  /** LEASE_GRANT, PRIVATE_LEASE_GRANT: its time to live in ms. */
  ttlMs: number;
}

export function emptyRecord(): DecodedRecord {
  return {
    type: RecordType.Set,
    revision: 0,
    createRevision: 0,
    version: 0,
    key: '',
    valueJson: '',
    size: 0,
    batchBytes: 0,
    syncedThrough: 0,
    lease: 0,
    ttlMs: 0,
  };
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
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
  }
  return t;
})();

const TWO_32 = 0x1_0000_0000;

/** A u64 little-endian, for values up to 2^53; those below 2^32 (most revisions) without a division. */
export function writeU64(buf: Buffer, value: number, offset: number): void {
  const high = value < TWO_32 ? 0 : Math.floor(value / TWO_32);
  buf.writeUInt32LE(value - high * TWO_32, offset);
  buf.writeUInt32LE(high, offset + 4);
}

/** Reads a u64 as a number; NaN if it is beyond what a JS number holds exactly. */
export function readU64(buf: Buffer, offset: number): number {
  const high = buf.readUInt32LE(offset + 4);
  if (high > 0x1fffff) return Number.NaN;
  return high * TWO_32 + buf.readUInt32LE(offset);
}

/** A file header; `version` other than FORMAT_VERSION only to write files of an older format (tests). */
export function encodeFileHeader(header: Omit<FileHeader, 'version'>, version = FORMAT_VERSION): Buffer {
  const buf = Buffer.alloc(FILE_HEADER_SIZE);
  FILE_MAGIC.copy(buf, 0);
  buf.writeUInt16LE(version, 8);
  buf.writeUInt8(header.kind, 10);
  writeU64(buf, header.baseRevision, 12);
  if (header.nonce.length !== NONCE_SIZE) throw new RangeError(`file nonce must be ${NONCE_SIZE} bytes`);
  header.nonce.copy(buf, HEADER_NONCE_OFFSET);
  buf.writeUInt32LE(crc32(buf.subarray(0, HEADER_CRC_OFFSET)), HEADER_CRC_OFFSET);
  return buf;
}

/** Decodes a file header, or returns why it is not one. */
export function decodeFileHeader(buf: Buffer): FileHeader | string {
  // Magic and version first (their offsets never change), so a file of another version says so.
  if (buf.length >= 10 && buf.subarray(0, 8).equals(FILE_MAGIC)) {
    const version = buf.readUInt16LE(8);
    if (!READABLE_VERSIONS.includes(version)) return unsupportedVersion(version);
  }
  if (buf.length < FILE_HEADER_SIZE) return `file header is ${buf.length} bytes, expected ${FILE_HEADER_SIZE}`;
  if (!buf.subarray(0, 8).equals(FILE_MAGIC)) return 'bad magic (not a kv data file)';
  if (buf.readUInt32LE(HEADER_CRC_OFFSET) !== crc32(buf.subarray(0, HEADER_CRC_OFFSET))) return 'file header CRC mismatch';
  const kind = buf.readUInt8(10);
  if (kind !== FileKind.Log && kind !== FileKind.Snapshot) return `unknown file kind ${kind}`;
  const baseRevision = readU64(buf, 12);
  if (Number.isNaN(baseRevision)) return 'base revision out of range';
  const nonce = Buffer.from(buf.subarray(HEADER_NONCE_OFFSET, HEADER_NONCE_OFFSET + NONCE_SIZE));
  return { version: buf.readUInt16LE(8), kind, baseRevision, nonce };
}

function unsupportedVersion(version: number): string {
  const readable = `${READABLE_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_VERSIONS[READABLE_VERSIONS.length - 1]}`;
  return `unsupported format version ${version} (this build reads versions ${readable})`;
}

/** Whether a file header (at least 10 bytes seen) is a kv data file of another format version. */
export function isOtherFormatVersion(buf: Buffer): boolean {
  return buf.length >= 10 && buf.subarray(0, 8).equals(FILE_MAGIC) && !READABLE_VERSIONS.includes(buf.readUInt16LE(8));
}

/** Bytes of the SET (or, with a lease, SET_LEASED) record of a key and value of these UTF-8 sizes. */
export function setRecordSize(keyBytes: number, valueBytes: number, lease = 0): number {
  return (lease === 0 ? SET_HEADER_SIZE : SET_LEASED_HEADER_SIZE) + keyBytes + valueBytes;
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
 * Writes the SET record of a key with `entry` at `offset` (SET_LEASED if the
 * entry has a lease; the caller sized `buf` with setRecordSize) and returns
 * the offset after it. The key's and the value's UTF-8 bytes are already in
 * `buf`, back to back at `textAt`, behind the records (encodeBatch). The
 * record's revision is entry.modRevision.
 */
function writeSetRecord(buf: Buffer, offset: number, textAt: number, keyBytes: number, entry: StoredEntry, valueBytes: number): number {
  writeU64(buf, entry.createRevision, offset + 17);
  buf.writeUInt32LE(entry.version, offset + 25);
  buf.writeUInt32LE(keyBytes, offset + 29);
  let at = offset + SET_HEADER_SIZE;
  if (entry.lease !== 0) {
    writeU64(buf, entry.lease, at);
    at += 8;
  }
  buf.copyWithin(at, textAt, textAt + keyBytes + valueBytes);
  at += keyBytes + valueBytes;
  return sealRecord(buf, offset, at, entry.lease === 0 ? RecordType.Set : RecordType.SetLeased, entry.modRevision);
}

/** A LEASE_GRANT record, or with `isPrivate` a PRIVATE_LEASE_GRANT one. */
export function writeLeaseGrantRecord(buf: Buffer, offset: number, revision: number, id: number, ttlMs: number, isPrivate = false): number {
  writeU64(buf, id, offset + 17);
  writeU64(buf, ttlMs, offset + 25);
  return sealRecord(
    buf,
    offset,
    offset + LEASE_GRANT_RECORD_SIZE,
    isPrivate ? RecordType.PrivateLeaseGrant : RecordType.LeaseGrant,
    revision,
  );
}

function writeLeaseRevokeRecord(buf: Buffer, offset: number, revision: number, id: number): number {
  writeU64(buf, id, offset + 17);
  return sealRecord(buf, offset, offset + LEASE_REVOKE_RECORD_SIZE, RecordType.LeaseRevoke, revision);
}

/** A DELETE (or CLEAR) record of the key (prefix) whose UTF-8 bytes are in `buf` at `textAt` (encodeBatch). */
function writeKeyRecord(buf: Buffer, offset: number, type: RecordType, revision: number, textAt: number, keyBytes: number): number {
  buf.copyWithin(offset + MIN_RECORD_SIZE, textAt, textAt + keyBytes);
  return sealRecord(buf, offset, offset + MIN_RECORD_SIZE + keyBytes, type, revision);
}

/**
 * Writes a BATCH record at `offset`: `batchBytes` of records follow it, the
 * last with revision `revision`; the log was durable up to `syncedThrough`;
 * `nonce` is the log's file nonce (from its header).
 */
export function writeBatchRecord(
  buf: Buffer,
  offset: number,
  revision: number,
  batchBytes: number,
  syncedThrough: number,
  nonce: Buffer,
): number {
  if (nonce.length !== NONCE_SIZE) throw new RangeError(`file nonce must be ${NONCE_SIZE} bytes`);
  buf.writeUInt32LE(batchBytes, offset + 17);
  writeU64(buf, syncedThrough, offset + 21);
  nonce.copy(buf, offset + BATCH_NONCE_OFFSET);
  return sealRecord(buf, offset, offset + BATCH_RECORD_SIZE, RecordType.Batch, revision);
}

/**
 * A batch whose text is longer than this many UTF-16 units is encoded string by string: one
 * joined string could pass V8's string length limit (2^29 - 24). A batch is bounded to about
 * 16 MiB (commit-loop.ts), but the op that passes that bound is decided whole, and one
 * transaction may write 128 values of 1 MiB.
 */
export const MAX_JOINED_TEXT = 64 * 1024 * 1024;

/**
 * Encodes a batch of changes as one buffer, ready to append to a log: the
 * BATCH record (saying how many bytes follow, how far the log was durable
 * before it, and the log's nonce), then one record per change. A clear is
 * logged by its prefix alone: replay removes what is under it then.
 */
export function encodeBatch(changes: readonly Change[], syncedThrough: number, nonce: Buffer, maxJoinedText = MAX_JOINED_TEXT): Buffer {
  const n = changes.length;
  // Each change's key (or prefix) and value, joined: one UTF-8 size and one encode for the whole batch,
  // where two native calls per string cost more than the rest of a record.
  const texts = new Array<string>(2 * n);
  for (let i = 0; i < n; i++) {
    const c = changes[i];
    texts[2 * i] = c.type === 'set' || c.type === 'delete' ? c.key : c.type === 'clear' ? c.prefix : '';
    texts[2 * i + 1] = c.type === 'set' ? c.entry.valueJson : '';
  }
  let chars = 0;
  for (const text of texts) chars += text.length;
  const joined = chars <= maxJoinedText ? texts.join('') : undefined;
  const joinedBytes = joined === undefined ? -1 : Buffer.byteLength(joined, 'utf8');
  const ascii = joinedBytes === chars;
  // Per change: the UTF-8 bytes of its key (or prefix) and of its value.
  const sizes = new Array<number>(2 * n);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = changes[i];
    const keyBytes = ascii ? texts[2 * i].length : Buffer.byteLength(texts[2 * i], 'utf8');
    const valueBytes = ascii ? texts[2 * i + 1].length : Buffer.byteLength(texts[2 * i + 1], 'utf8');
    sizes[2 * i] = keyBytes;
    sizes[2 * i + 1] = valueBytes;
    switch (c.type) {
      case 'set':
        bytes += setRecordSize(keyBytes, valueBytes, c.entry.lease);
        break;
      case 'delete':
      case 'clear':
        bytes += MIN_RECORD_SIZE + keyBytes;
        break;
      case 'lease-grant':
        bytes += LEASE_GRANT_RECORD_SIZE;
        break;
      case 'lease-revoke':
        bytes += LEASE_REVOKE_RECORD_SIZE;
        break;
    }
  }
  let textBytes = 0;
  for (const size of sizes) textBytes += size;
  // Keys and values are valid Unicode (no lone surrogate that joining could pair), so their sizes add up; checked all the same.
  if (joined !== undefined && joinedBytes !== textBytes) throw new Error('batch text does not add up: a lone surrogate');
  // The text goes behind the records; each record then moves its part into place.
  const end = BATCH_RECORD_SIZE + bytes;
  const buf = Buffer.allocUnsafe(end + textBytes);
  if (joined !== undefined) {
    buf.write(joined, end, textBytes, 'utf8');
  } else {
    let textAt = end;
    for (let i = 0; i < 2 * n; i++) textAt += buf.write(texts[i], textAt, sizes[i], 'utf8');
  }
  let text = end;
  let at = BATCH_RECORD_SIZE;
  for (let i = 0; i < n; i++) {
    const c = changes[i];
    const keyBytes = sizes[2 * i];
    switch (c.type) {
      case 'set':
        at = writeSetRecord(buf, at, text, keyBytes, c.entry, sizes[2 * i + 1]);
        break;
      case 'delete':
        at = writeKeyRecord(buf, at, RecordType.Delete, c.revision, text, keyBytes);
        break;
      case 'clear':
        at = writeKeyRecord(buf, at, RecordType.Clear, c.revision, text, keyBytes);
        break;
      case 'lease-grant':
        at = writeLeaseGrantRecord(buf, at, c.revision, c.id, c.ttlMs, c.private === true);
        break;
      case 'lease-revoke':
        at = writeLeaseRevokeRecord(buf, at, c.revision, c.id);
        break;
    }
    text += keyBytes + sizes[2 * i + 1];
  }
  writeBatchRecord(buf, 0, changes[n - 1].revision, bytes, syncedThrough, nonce);
  return buf.subarray(0, end);
}

/** The state before a record, which decodeChange reads for previous entries and cleared keys. */
export interface StateBefore {
  get(key: string): StoredEntry | undefined;
  entriesUnder(prefix: string): Array<[string, StoredEntry]>;
}

/**
 * The Change a decoded record stands for (replay), its previous entries
 * read from the state before it; undefined for a DELETE of a key that is
 * not there (never written, but harmless to skip).
 */
export function decodeChange(record: DecodedRecord, before: StateBefore): Change | undefined {
  const revision = record.revision;
  switch (record.type) {
    case RecordType.Set:
    case RecordType.SetLeased: {
      const entry: StoredEntry = {
        valueJson: record.valueJson,
        createRevision: record.createRevision,
        modRevision: revision,
        version: record.version,
        lease: record.lease,
      };
      return { type: 'set', key: record.key, revision, entry, prev: before.get(record.key) };
    }
    case RecordType.Delete: {
      const prev = before.get(record.key);
      return prev === undefined ? undefined : { type: 'delete', key: record.key, revision, prev };
    }
    case RecordType.Clear:
      return { type: 'clear', prefix: record.key, revision, removed: before.entriesUnder(record.key) };
    case RecordType.LeaseGrant:
      return { type: 'lease-grant', id: record.lease, ttlMs: record.ttlMs, revision };
    case RecordType.PrivateLeaseGrant:
      return { type: 'lease-grant', id: record.lease, ttlMs: record.ttlMs, revision, private: true };
    case RecordType.LeaseRevoke:
      return { type: 'lease-revoke', id: record.lease, revision };
    default:
      throw new Error(`record type ${record.type} is not a change`);
  }
}

/**
 * Whether the BATCH record at `offset` (already accepted by checkRecord)
 * carries `nonce`, i.e. was written to the log whose header holds it.
 */
export function batchNonceIs(buf: Buffer, offset: number, nonce: Buffer): boolean {
  return buf.compare(nonce, 0, NONCE_SIZE, offset + BATCH_NONCE_OFFSET, offset + BATCH_NONCE_OFFSET + NONCE_SIZE) === 0;
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
  const problem = checkRecord(buf, offset, end, out, true);
  if (problem === undefined) decodeCheckedRecord(buf, offset, out);
  return problem;
}

/**
 * Checks the record at `offset` and fills in everything but its text (key,
 * value); with `verifyCrc` false it trusts the CRC (a record checked before).
 * Replay checks a whole batch this way before applying any of it.
 */
export function checkRecord(buf: Buffer, offset: number, end: number, out: DecodedRecord, verifyCrc: boolean): RecordProblem | undefined {
  if (end - offset < FRAME_SIZE) return { short: true, reason: 'record frame cut short' };
  const bodyLength = buf.readUInt32LE(offset + 4);
  const size = FRAME_SIZE + bodyLength;
  if (size < MIN_RECORD_SIZE) return { short: false, reason: `record body length ${bodyLength} too small` };
  if (end - offset < size) return { short: true, reason: `record of ${size} bytes cut short` };
  const recordEnd = offset + size;
  if (verifyCrc && buf.readUInt32LE(offset) !== crc32Of(buf, offset + 4, recordEnd)) {
    return { short: false, reason: 'record CRC mismatch' };
  }
  const type = buf[offset + 8];
  const revision = readU64(buf, offset + 9);
  // Lease records carry the store revision at the time, which is 0 in a store never written, and so does a batch of only those.
  const mayBeZero = isLeaseGrant(type) || type === RecordType.LeaseRevoke || type === RecordType.Batch;
  if (!(revision > 0 || (mayBeZero && revision === 0))) return { short: false, reason: 'record revision out of range' };
  out.type = type;
  out.revision = revision;
  out.size = size;
  out.lease = 0;
  switch (type) {
    case RecordType.Set:
    case RecordType.SetLeased: {
      const header = type === RecordType.Set ? SET_HEADER_SIZE : SET_LEASED_HEADER_SIZE;
      if (size < header) return { short: false, reason: 'SET record too small' };
      const createRevision = readU64(buf, offset + 17);
      const version = buf.readUInt32LE(offset + 25);
      const keyBytes = buf.readUInt32LE(offset + 29);
      if (keyBytes === 0 || header + keyBytes > size) return { short: false, reason: 'SET key length out of range' };
      if (!(createRevision > 0 && createRevision <= revision) || version === 0) {
        return { short: false, reason: 'SET revisions inconsistent' };
      }
      if (type === RecordType.SetLeased) {
        const lease = readU64(buf, offset + SET_HEADER_SIZE);
        if (!(lease > 0)) return { short: false, reason: 'SET_LEASED lease id out of range' };
        out.lease = lease;
      }
      out.createRevision = createRevision;
      out.version = version;
      return undefined;
    }
    case RecordType.LeaseGrant:
    case RecordType.PrivateLeaseGrant:
    case RecordType.LeaseRevoke: {
      const expected = type === RecordType.LeaseRevoke ? LEASE_REVOKE_RECORD_SIZE : LEASE_GRANT_RECORD_SIZE;
      if (size !== expected) return { short: false, reason: `lease record of ${size} bytes, expected ${expected}` };
      const lease = readU64(buf, offset + 17);
      if (!(lease > 0)) return { short: false, reason: 'lease id out of range' };
      out.lease = lease;
      if (type !== RecordType.LeaseRevoke) {
        const ttlMs = readU64(buf, offset + 25);
        if (!(ttlMs > 0)) return { short: false, reason: 'lease ttl out of range' };
        out.ttlMs = ttlMs;
      }
      return undefined;
    }
    case RecordType.Delete:
      if (size === MIN_RECORD_SIZE) return { short: false, reason: 'DELETE record without a key' };
      return undefined;
    case RecordType.Clear:
      return undefined;
    case RecordType.Batch: {
      if (size !== BATCH_RECORD_SIZE) return { short: false, reason: `BATCH record of ${size} bytes, expected ${BATCH_RECORD_SIZE}` };
      const batchBytes = buf.readUInt32LE(offset + 17);
      const syncedThrough = readU64(buf, offset + 21);
      if (batchBytes < MIN_RECORD_SIZE) return { short: false, reason: `BATCH of ${batchBytes} bytes holds no record` };
      if (!(syncedThrough >= FILE_HEADER_SIZE)) return { short: false, reason: 'BATCH synced-through offset out of range' };
      out.batchBytes = batchBytes;
      out.syncedThrough = syncedThrough;
      return undefined;
    }
    default:
      return { short: false, reason: `unknown record type ${type}` };
  }
}

/**
 * Decodes a record that checkRecord already accepted (so nothing is checked
 * again), key and value included: replay's second pass over a batch.
 */
export function decodeCheckedRecord(buf: Buffer, offset: number, out: DecodedRecord): void {
  const size = FRAME_SIZE + buf.readUInt32LE(offset + 4);
  const type = buf[offset + 8];
  const recordEnd = offset + size;
  out.type = type;
  out.size = size;
  out.revision = buf.readUInt32LE(offset + 13) * TWO_32 + buf.readUInt32LE(offset + 9);
  out.lease = 0;
  if (type === RecordType.Set || type === RecordType.SetLeased) {
    out.createRevision = buf.readUInt32LE(offset + 21) * TWO_32 + buf.readUInt32LE(offset + 17);
    out.version = buf.readUInt32LE(offset + 25);
    let keyStart = offset + SET_HEADER_SIZE;
    if (type === RecordType.SetLeased) {
      out.lease = buf.readUInt32LE(keyStart + 4) * TWO_32 + buf.readUInt32LE(keyStart);
      keyStart += 8;
    }
    const keyEnd = keyStart + buf.readUInt32LE(offset + 29);
    out.key = buf.toString('utf8', keyStart, keyEnd);
    out.valueJson = buf.toString('utf8', keyEnd, recordEnd);
  } else if (isLeaseGrant(type) || type === RecordType.LeaseRevoke) {
    out.lease = buf.readUInt32LE(offset + 21) * TWO_32 + buf.readUInt32LE(offset + 17);
    if (type !== RecordType.LeaseRevoke) out.ttlMs = buf.readUInt32LE(offset + 29) * TWO_32 + buf.readUInt32LE(offset + 25);
  } else {
    out.key = buf.toString('utf8', offset + MIN_RECORD_SIZE, recordEnd);
  }
}
