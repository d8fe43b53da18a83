/**
 * Loads a checkpoint (a snapshot of format version 5, checkpoint-codec.ts)
 * at open: the file is read in large pieces into Buffers that the key table
 * then uses as they are (the history gets copies of its blocks). Every block's CRC and every
 * field of every entry and change is checked, and the keys must be in
 * strictly increasing order; any damage is a CorruptDataError (a checkpoint
 * is complete and durable before it gets its name, so damage is never a
 * torn write; recover-log.ts decides whether older files can stand in).
 */
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { CorruptDataError } from '../errors';
import { BLOCK_HEADER_SIZE, BlockType, END_RECORD_SIZE, type CheckpointEnd, checkChange, decodeEnd } from './checkpoint-codec';
import { PackedHistory } from './packed-history';
import { type KeyTable, KeyTableBuilder } from './key-table';
import {
  FILE_HEADER_SIZE,
  FRAME_SIZE,
  LEASE_GRANT_RECORD_SIZE,
  MIN_RECORD_SIZE,
  RecordType,
  emptyRecord,
  readRecord,
  readU64,
} from './record-codec';

/** The Buffers the file is read into; a block larger than this gets one of its own size. */
const SLAB_BYTES = 64 * 1024 * 1024;
/** Bytes per read call, so that replay can yield between them. */
const READ_BYTES = 16 * 1024 * 1024;

export interface LoadedCheckpoint {
  table: KeyTable;
  leases: Array<{ id: number; ttlMs: number }>;
  history: PackedHistory;
  /** The history holds every change from this revision up to the checkpoint's. */
  historyFrom: number;
  /** Bytes of the HISTORY blocks. */
  historyBytes: number;
}

/**
 * Reads the checkpoint at `filePath` (open as `fd`, `fileSize` bytes, of
 * revision `revision` from its header, already checked). `progress` is
 * awaited after each block with its size (replay yields there).
 */
export async function readCheckpoint(
  fd: number,
  filePath: string,
  fileSize: number,
  revision: number,
  progress: (bytes: number) => Promise<void>,
): Promise<LoadedCheckpoint> {
  const corrupt = (offset: number, reason: string): CorruptDataError => new CorruptDataError(filePath, offset, reason);
  const endAt = fileSize - END_RECORD_SIZE;
  if (endAt < FILE_HEADER_SIZE) throw corrupt(FILE_HEADER_SIZE, 'checkpoint cut short (no END record)');
  const endBuf = Buffer.alloc(END_RECORD_SIZE);
  fs.readSync(fd, endBuf, 0, END_RECORD_SIZE, endAt);
  const end: CheckpointEnd | string = decodeEnd(endBuf);
  if (typeof end === 'string') throw corrupt(endAt, end);
  if (end.revision !== revision) throw corrupt(endAt, `END record of revision ${end.revision} in a checkpoint of revision ${revision}`);

  const reader = new SlabReader(fd, endAt);
  const keys = new KeyTableBuilder(end.keys, reader.slabs);
  // History blocks are copied out of the slabs: the window may hold them after a compaction has replaced the key table (and let its slabs go).
  const historyBlocks: Buffer[] = [];
  const history = new PackedHistory(historyBlocks, end.changes);
  const leases: Array<{ id: number; ttlMs: number }> = [];
  const record = emptyRecord();
  let historyBytes = 0;
  let lastRevision = end.historyFrom;
  // Sections come in order: leases, keys, history.
  let section = RecordType.LeaseGrant as number;
  let offset = FILE_HEADER_SIZE;
  while (offset < endAt) {
    let i = reader.at(offset, MIN_RECORD_SIZE);
    if (i < 0) throw corrupt(offset, 'record frame cut short');
    const size = FRAME_SIZE + reader.slab.readUInt32LE(i + 4);
    i = reader.at(offset, size);
    if (size < MIN_RECORD_SIZE || i < 0) throw corrupt(offset, `record of ${size} bytes runs past the END record`);
    const buf = reader.slab;
    const type = buf[i + 8];
    if (type !== RecordType.LeaseGrant && type !== BlockType.Keys && type !== BlockType.History) {
      throw corrupt(offset, `record type ${type} in a checkpoint`);
    }
    if (type < section)
      throw corrupt(offset, `record type ${type} after the checkpoint's ${section === BlockType.Keys ? 'keys' : 'history'}`);
    section = type;
    if (type === RecordType.LeaseGrant) {
      const problem = readRecord(buf, i, i + size, record);
      if (problem !== undefined) throw corrupt(offset, problem.reason);
      if (size !== LEASE_GRANT_RECORD_SIZE) throw corrupt(offset, 'LEASE_GRANT record of the wrong size');
      leases.push({ id: record.lease, ttlMs: record.ttlMs });
    } else {
      if (size < BLOCK_HEADER_SIZE) throw corrupt(offset, 'block too small');
      if (buf.readUInt32LE(i) !== crc32(buf.subarray(i + 4, i + size))) throw corrupt(offset, 'block CRC mismatch');
      if (readU64(buf, i + 9) !== revision) throw corrupt(offset, 'block revision is not the checkpoint revision');
      const count = buf.readUInt32LE(i + 17);
      if (count === 0) throw corrupt(offset, 'empty block');
      const keysBlock = type === BlockType.Keys;
      if (!keysBlock) historyBlocks.push(Buffer.from(buf.subarray(i, i + size)));
      // The block's bytes, and where it starts in them.
      const src = keysBlock ? buf : historyBlocks[historyBlocks.length - 1];
      const start = keysBlock ? i : 0;
      const blockEnd = start + size;
      let p = start + BLOCK_HEADER_SIZE;
      for (let n = 0; n < count; n++) {
        if (keysBlock) {
          const entry = keys.add(reader.slabIndex, p, blockEnd, revision);
          if (typeof entry === 'string') throw corrupt(offset + (p - start), entry);
          p += entry;
        } else {
          const change = checkChange(src, p, blockEnd, revision);
          if (typeof change === 'string') throw corrupt(offset + (p - start), change);
          if (change.revision < lastRevision) throw corrupt(offset + (p - start), 'history out of revision order');
          lastRevision = change.revision;
          if (!history.add(historyBlocks.length - 1, p, change.size, change.revision)) {
            throw corrupt(offset + (p - start), 'more history than the END record says');
          }
          p += change.size;
        }
      }
      if (p !== blockEnd) throw corrupt(offset + (p - start), 'block holds bytes past its last entry');
      if (type === BlockType.History) historyBytes += size;
    }
    offset += size;
    await progress(size);
  }
  if (keys.size !== end.keys || history.count !== end.changes || leases.length !== end.leases) {
    throw corrupt(endAt, 'the END record does not match the blocks before it');
  }
  return { table: keys.finish(), leases, history, historyFrom: end.historyFrom, historyBytes };
}

/** Reads a file front to back into slabs; at() makes a range of it available in the current slab. */
class SlabReader {
  readonly slabs: Buffer[] = [];
  slab = Buffer.alloc(0);
  /** File offset of slab[0], and bytes read into the slab. */
  private start = 0;
  private filled = 0;

  constructor(
    private readonly fd: number,
    private readonly fileEnd: number,
  ) {}

  get slabIndex(): number {
    return this.slabs.length - 1;
  }

  /** The index in `slab` of file offset `offset`, with `n` bytes from it read; -1 if the file ends first. */
  at(offset: number, n: number): number {
    if (offset + n > this.fileEnd) return -1;
    if (offset + n > this.start + this.slab.length) this.newSlab(offset, n);
    while (this.start + this.filled < offset + n) {
      const want = Math.min(READ_BYTES, this.slab.length - this.filled);
      const got = fs.readSync(this.fd, this.slab, this.filled, want, this.start + this.filled);
      if (got === 0) return -1;
      this.filled += got;
    }
    return offset - this.start;
  }

  /** Starts a slab at `offset` (keeping the bytes of it already read) big enough for `n` bytes. */
  private newSlab(offset: number, n: number): void {
    const next = Buffer.allocUnsafe(Math.min(Math.max(SLAB_BYTES, n), this.fileEnd - offset));
    let kept = 0;
    if (offset < this.start + this.filled) {
      kept = this.slab.copy(next, 0, offset - this.start, this.filled);
    }
    this.slabs.push(next);
    this.slab = next;
    this.start = offset;
    this.filled = kept;
  }
}
