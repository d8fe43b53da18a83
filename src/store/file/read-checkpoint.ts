/**
 * Loads a checkpoint (a snapshot of format version 5, checkpoint-codec.ts)
 * at open: the file is read in large pieces into Buffers that the key table
 * and the history then use as they are, each its own (the history window may
 * outlive the key table: a compaction replaces it). Every block's CRC and every
 * field of every entry and change is checked, and the keys must be in
 * strictly increasing order; any damage is a CorruptDataError (a checkpoint
 * is complete and durable before it gets its name, so damage is never a
 * torn write; recover-log.ts decides whether older files can stand in).
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { CorruptDataError } from '../errors';
import {
  BLOCK_HEADER_SIZE,
  BlockType,
  END_RECORD_SIZE,
  type CheckpointEnd,
  changeBytesAt,
  checkChange,
  decodeEnd,
} from './checkpoint-codec';
import type { PackedChanges } from '../feed/history-window';
import { decodeColumns } from './packed-columns';
import { PackedHistory } from './packed-history';
import { type KeyTable, KeyTableBuilder, sharedBytes } from './key-table';
import {
  FILE_HEADER_SIZE,
  FRAME_SIZE,
  type FileHeader,
  LEASE_GRANT_RECORD_SIZE,
  MIN_RECORD_SIZE,
  RecordType,
  emptyRecord,
  isLeaseGrant,
  readRecord,
  readU64,
  typeNewerThanFile,
} from './record-codec';

const fsRead = promisify(fs.read);

/** How a checkpoint is read into memory (tests use small ones, to cross slab boundaries with little data). */
export interface SlabLayout {
  /** File bytes per slab (a Buffer the file is read into); at most this much history is read into the key table's last slab. */
  slabBytes: number;
  /**
   * Room at the head of each slab for the start of a block that began in the
   * slab before (copied there, so that every block lies in one slab): blocks
   * close at about 1 MiB, plus one entry. A larger block gets a Buffer of its own.
   */
  carryBytes: number;
  /** Bytes per read call; divides slabBytes. */
  readBytes: number;
  /** Reads kept in flight beyond the block being checked: the thread pool reads (and the kernel maps the pages) while this thread checks. */
  readsAhead: number;
}

const DEFAULT_LAYOUT: SlabLayout = {
  slabBytes: 16 * 1024 * 1024,
  carryBytes: 4 * 1024 * 1024,
  readBytes: 4 * 1024 * 1024,
  readsAhead: 3,
};

export interface LoadedCheckpoint {
  table: KeyTable;
  leases: Array<{ id: number; ttlMs: number; private: boolean }>;
  /** In revision order: HISTORY blocks' changes as PackedHistory, HISTORY_COLUMNS blocks' as PackedColumns. */
  history: PackedChanges[];
  /** The history holds every change from this revision up to the checkpoint's. */
  historyFrom: number;
  /** Bytes of the history blocks (HISTORY and HISTORY_COLUMNS). */
  historyBytes: number;
}

/**
 * Reads the checkpoint at `filePath` (open as `fd`, `fileSize` bytes; its
 * header, already checked, gives its format version and revision).
 * `progress` is awaited after each block with its size (replay yields there).
 */
export async function readCheckpoint(
  fd: number,
  filePath: string,
  fileSize: number,
  header: Pick<FileHeader, 'version' | 'baseRevision'>,
  progress: (bytes: number) => Promise<void>,
  layout: SlabLayout = DEFAULT_LAYOUT,
): Promise<LoadedCheckpoint> {
  const corrupt = (offset: number, reason: string): CorruptDataError => new CorruptDataError(filePath, offset, reason);
  const endAt = fileSize - END_RECORD_SIZE;
  if (endAt < FILE_HEADER_SIZE) throw corrupt(FILE_HEADER_SIZE, 'checkpoint cut short (no END record)');
  const endBuf = Buffer.alloc(END_RECORD_SIZE);
  fs.readSync(fd, endBuf, 0, END_RECORD_SIZE, endAt);
  const end: CheckpointEnd | string = decodeEnd(endBuf);
  if (typeof end === 'string') throw corrupt(endAt, end);
  const revision = header.baseRevision;
  if (end.revision !== revision) throw corrupt(endAt, `END record of revision ${end.revision} in a checkpoint of revision ${revision}`);

  const keyReader = new SlabReader(fd, FILE_HEADER_SIZE, endAt, layout);
  const keys = new KeyTableBuilder(end.keys, keyReader.slabs);
  // The history is read into slabs of its own from its first block on (set then).
  const historySlabs: Buffer[] = [];
  const history: PackedChanges[] = [];
  let historyCount = 0;
  let reader = keyReader;
  const readBlocks = async (): Promise<LoadedCheckpoint> => {
    const leases: Array<{ id: number; ttlMs: number; private: boolean }> = [];
    const record = emptyRecord();
    let historyBytes = 0;
    let lastRevision = end.historyFrom;
    // Sections come in order: leases, keys, history.
    let section = RecordType.LeaseGrant as number;
    let offset = FILE_HEADER_SIZE;
    while (offset < endAt) {
      let i = await reader.at(offset, MIN_RECORD_SIZE);
      if (i < 0) throw corrupt(offset, 'record frame cut short');
      const size = FRAME_SIZE + reader.slab.readUInt32LE(i + 4);
      i = await reader.at(offset, size);
      if (size < MIN_RECORD_SIZE || i < 0) throw corrupt(offset, `record of ${size} bytes runs past the END record`);
      let buf = reader.slab;
      const recordType = buf[i + 8];
      if (
        !isLeaseGrant(recordType) &&
        recordType !== BlockType.Keys &&
        recordType !== BlockType.History &&
        recordType !== BlockType.HistoryColumns
      ) {
        throw corrupt(offset, `record type ${recordType} in a checkpoint`);
      }
      const tooNew = typeNewerThanFile(recordType, header.version);
      if (tooNew !== undefined) throw corrupt(offset, tooNew);
      // Private leases (since version 6) are in the leases' section too, and the two kinds of history block in one section.
      const type = isLeaseGrant(recordType)
        ? RecordType.LeaseGrant
        : recordType === BlockType.HistoryColumns
          ? BlockType.History
          : recordType;
      if (type < section)
        throw corrupt(offset, `record type ${type} after the checkpoint's ${section === BlockType.Keys ? 'keys' : 'history'}`);
      section = type;
      if (type === BlockType.History && reader === keyReader) {
        reader = new SlabReader(fd, offset, endAt, layout, historySlabs);
        i = await reader.at(offset, size);
        buf = reader.slab;
      }
      if (type === RecordType.LeaseGrant) {
        const problem = readRecord(buf, i, i + size, record);
        if (problem !== undefined) throw corrupt(offset, problem.reason);
        if (size !== LEASE_GRANT_RECORD_SIZE) throw corrupt(offset, 'LEASE_GRANT record of the wrong size');
        leases.push({ id: record.lease, ttlMs: record.ttlMs, private: recordType === RecordType.PrivateLeaseGrant });
      } else {
        if (size < BLOCK_HEADER_SIZE) throw corrupt(offset, 'block too small');
        if (buf.readUInt32LE(i) !== crc32(buf.subarray(i + 4, i + size))) throw corrupt(offset, 'block CRC mismatch');
        if (readU64(buf, i + 9) !== revision) throw corrupt(offset, 'block revision is not the checkpoint revision');
        const count = buf.readUInt32LE(i + 17);
        if (count === 0) throw corrupt(offset, 'empty block');
        if (historyCount + (type === BlockType.History ? count : 0) > end.changes)
          throw corrupt(offset, 'more history than the END record says');
        const keysBlock = type === BlockType.Keys;
        const start = i;
        const blockEnd = start + size;
        let p = start + BLOCK_HEADER_SIZE;
        if (recordType === BlockType.HistoryColumns) {
          const columns = decodeColumns(buf, p, blockEnd, count, { after: lastRevision, atMost: revision });
          if (typeof columns === 'string') throw corrupt(offset, columns);
          lastRevision = columns.revisionAt(count - 1);
          history.push(columns);
          historyCount += count;
          historyBytes += size;
          offset += size;
          await progress(size);
          continue;
        }
        // Each HISTORY block's changes are a PackedHistory of their own (a HISTORY_COLUMNS block may come between two).
        const changes = keysBlock ? undefined : new PackedHistory(historySlabs, count);
        for (let n = 0; n < count; n++) {
          if (keysBlock) {
            const entry = keys.add(reader.slabIndex, p, blockEnd, revision);
            if (typeof entry === 'string') throw corrupt(offset + (p - start), entry);
            p += entry;
          } else {
            const change = checkChange(buf, p, blockEnd, revision);
            if (typeof change === 'string') throw corrupt(offset + (p - start), change);
            if (change.revision < lastRevision) throw corrupt(offset + (p - start), 'history out of revision order');
            lastRevision = change.revision;
            // Measured as the window measures the change itself (a HISTORY record holds its key twice, and framing).
            (changes as PackedHistory).add(reader.slabIndex, p, change.size, change.revision, changeBytesAt(buf, p));
            p += change.size;
          }
        }
        if (p !== blockEnd) throw corrupt(offset + (p - start), 'block holds bytes past its last entry');
        if (changes !== undefined) {
          history.push(changes);
          historyCount += count;
          historyBytes += size;
        }
      }
      offset += size;
      await progress(size);
    }
    if (keys.size !== end.keys || historyCount !== end.changes || leases.length !== end.leases) {
      throw corrupt(endAt, 'the END record does not match the blocks before it');
    }
    return { table: keys.finish(), leases, history, historyFrom: end.historyFrom, historyBytes };
  };
  try {
    return await readBlocks();
  } finally {
    // No read may still be writing into a Buffer, or reading the file, once the caller closes it.
    await keyReader.drain();
    if (reader !== keyReader) await reader.drain();
  }
}

/**
 * Reads a file from `from` to `fileEnd` into slabs, asynchronously and ahead
 * of the caller; at() makes a range of it available in one slab. Slab k holds
 * the file's bytes [from + k·slabBytes, from + (k+1)·slabBytes) after
 * carryBytes of room, so every slab can be read before anyone knows where
 * its first block starts. Only the slabs at() has handed out are in `slabs`.
 */
class SlabReader {
  slab: Buffer = Buffer.alloc(0);
  /** Planned slab k (allocated when its first read is issued), and its index in `slabs` once handed out. */
  private readonly planned: Buffer[] = [];
  private readonly handedOut: number[] = [];
  private position = -1;
  /** Read r covers bytes [r·readBytes, (r+1)·readBytes) from `from`; it resolves with the bytes it got. */
  private readonly reads: Array<Promise<number>> = [];
  private readonly totalReads: number;
  /** Reads known complete, in order. */
  private ready = 0;
  private end: number;

  constructor(
    private readonly fd: number,
    private readonly from: number,
    fileEnd: number,
    private readonly layout: SlabLayout,
    readonly slabs: Buffer[] = [],
  ) {
    if (layout.slabBytes % layout.readBytes !== 0) throw new Error('readBytes must divide slabBytes');
    this.end = fileEnd;
    this.totalReads = Math.ceil((fileEnd - from) / layout.readBytes);
  }

  /** The index in `slabs` of `slab`. */
  get slabIndex(): number {
    return this.position;
  }

  /** The index in `slab` of file offset `offset`, with `n` bytes from it read; -1 if the file ends first. */
  async at(offset: number, n: number): Promise<number> {
    const { slabBytes, carryBytes } = this.layout;
    if (offset + n > this.end) return -1;
    const start = offset - this.from;
    const end = start + n;
    await this.readThrough(end);
    if (offset + n > this.end) return -1;
    const k = Math.floor(start / slabBytes);
    const index = carryBytes + start - k * slabBytes;
    const lastSlab = Math.floor((end - 1) / slabBytes);
    if (lastSlab === k) return this.use(k, index);
    const carried = (k + 1) * slabBytes - start;
    if (lastSlab === k + 1 && carried <= carryBytes) {
      this.planned[k].copy(this.planned[k + 1], carryBytes - carried, index, carryBytes + slabBytes);
      return this.use(k + 1, carryBytes - carried);
    }
    const own = sharedBytes(n);
    for (let done = 0; done < n;) {
      const at = start + done;
      const slab = Math.floor(at / slabBytes);
      const from = carryBytes + at - slab * slabBytes;
      done += this.planned[slab].copy(own, done, from, Math.min(carryBytes + slabBytes, from + n - done));
    }
    this.slabs.push(own);
    this.slab = own;
    this.position = this.slabs.length - 1;
    return 0;
  }

  /** Waits for every read issued (whatever its outcome). */
  async drain(): Promise<void> {
    await Promise.allSettled(this.reads);
  }

  private use(k: number, index: number): number {
    if (this.handedOut[k] === undefined) {
      this.slabs.push(this.planned[k]);
      this.handedOut[k] = this.slabs.length - 1;
    }
    this.slab = this.planned[k];
    this.position = this.handedOut[k];
    return index;
  }

  /** Issues the reads up to readsAhead past `end` (relative to `from`) and waits for those before it; a short read ends the file there. */
  private async readThrough(end: number): Promise<void> {
    const { readBytes, readsAhead } = this.layout;
    const last = Math.ceil(end / readBytes) - 1;
    for (let r = this.reads.length; r < Math.min(last + 1 + readsAhead, this.totalReads); r++) this.reads.push(this.read(r));
    for (; this.ready <= last; this.ready++) {
      const want = Math.min(readBytes, this.end - this.from - this.ready * readBytes);
      const got = await this.reads[this.ready];
      if (got < want) {
        this.end = this.from + this.ready * readBytes + got;
        return;
      }
    }
  }

  private read(r: number): Promise<number> {
    const { slabBytes, carryBytes, readBytes } = this.layout;
    const start = r * readBytes;
    const k = Math.floor(start / slabBytes);
    this.planned[k] ??= sharedBytes(carryBytes + Math.min(slabBytes, this.end - this.from - k * slabBytes));
    const buf = this.planned[k];
    const index = carryBytes + start - k * slabBytes;
    const length = Math.min(readBytes, this.end - this.from - start);
    return readFully(this.fd, buf, index, length, this.from + start);
  }
}

/** Reads until `length` bytes or the end of the file; resolves with the bytes read. */
async function readFully(fd: number, buf: Buffer, index: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fsRead(fd, buf, index + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
