/**
 * Where a checkpoint's keys go (write-checkpoint.ts, and the worker thread
 * that writes them for a large table, checkpoint-keys-worker.ts): KEYS blocks
 * in slabs, each block written to the file once full, and the key table of
 * what was written.
 */
import type { StoredEntry } from '../change';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_TARGET_BYTES,
  BlockType,
  ENTRY_HEADER_SIZE,
  checkEntry,
  entrySize,
  sealBlock,
  writeEntry,
} from './checkpoint-codec';
import { KeyTable, KeyTableBuilder, sharedBytes } from './key-table';
import { FILE_HEADER_SIZE, FileKind, LEASE_GRANT_RECORD_SIZE, encodeFileHeader, newFileNonce, writeLeaseGrantRecord } from './record-codec';

/**
 * The Buffers the keys are written into (and then kept in, as the new table).
 * Under glibc's largest mmap threshold (32 MiB): a larger Buffer is a fresh
 * mapping each time, every page of it faulted in and zeroed by the kernel at
 * every checkpoint (copying 160 MiB into 64 MiB slabs took 165 ms, 95 of them
 * in the kernel; into 16 MiB slabs, which reuse the memory of the table
 * before, 50–60 ms). Measured when slabs were plain Buffers; they are
 * SharedArrayBuffers now (zero-filled when allocated), not measured again.
 */
const SLAB_BYTES = 16 * 1024 * 1024;

/** What KeyBlocks wrote: how many keys, and their table (KeyTable.empty if not kept). */
export interface KeysWritten {
  count: number;
  table: KeyTable;
}

/** Awaited between blocks: resolves when the writer may go on, rejects to stop it. */
export type BetweenBlocks = () => Promise<void> | void;

/** How many keys a loop over keys handles between two calls of BetweenBlocks. */
export const KEYS_PER_PAUSE = 1024;
/** How many entries go into a block between two calls of BetweenBlocks (a block of small entries holds thousands). */
export const ENTRIES_PER_PAUSE = 512;

/**
 * `betweenBlocks` on every n-th item of a long loop, counted one at a time
 * or a run at a time (a run of at most `left` items). Returns undefined when
 * there is nothing to wait for, so that the loop does not await (a turn of
 * the microtask queue) per item.
 */
export class EveryNth {
  private count = 0;

  constructor(
    private readonly n: number,
    private readonly betweenBlocks: BetweenBlocks,
  ) {}

  /** Items before the next pause: a run counted at once must not be longer. */
  get left(): number {
    return this.n - (this.count % this.n);
  }

  /** Counts `items` (at most `left`); calls betweenBlocks if they reach the next n-th. */
  tick(items = 1): Promise<void> | void {
    this.count += items;
    return this.count % this.n === 0 ? this.betweenBlocks() : undefined;
  }
}

/** Where a checkpoint's keys go: KEYS blocks in slabs, each block written to the file once full. */
export class KeyBlocks {
  /** betweenBlocks, every ENTRIES_PER_PAUSE entries put in a block. */
  private readonly perEntries: EveryNth;
  private readonly slabs: Buffer[] = [];
  private readonly builder: KeyTableBuilder | undefined;
  private slab: Buffer = Buffer.alloc(0);
  private blockStart = 0;
  private at = 0;
  private count = 0;
  private total = 0;
  /** Without a table: the last key written, for the order check. */
  private lastKey = Buffer.alloc(0);

  /**
   * `capacity`: keep what is written as a KeyTable of at most this many
   * keys; undefined: keep nothing (one block's Buffer is reused).
   */
  constructor(
    capacity: number | undefined,
    private readonly revision: number,
    private readonly write: (buf: Buffer, start: number, end: number) => Promise<void>,
    private readonly betweenBlocks: BetweenBlocks,
  ) {
    this.perEntries = new EveryNth(ENTRIES_PER_PAUSE, betweenBlocks);
    this.builder = capacity === undefined ? undefined : new KeyTableBuilder(capacity, this.slabs);
  }

  /** Whether an entry of `size` bytes must go in the next block: this one holds entries and would outgrow its target or its slab. */
  private full(size: number): boolean {
    return this.count > 0 && (this.at - this.blockStart + size > BLOCK_TARGET_BYTES || this.at + size > this.slab.length);
  }

  /** Opens a block if none is, in a new slab if this one has no room for an entry of `size` bytes. */
  private open(size: number): void {
    if (this.count > 0) return;
    if (this.at + BLOCK_HEADER_SIZE + size > this.slab.length) {
      const bytes = Math.max(this.builder === undefined ? 2 * BLOCK_TARGET_BYTES : SLAB_BYTES, BLOCK_HEADER_SIZE + size);
      // The table's slabs are shared memory (key-table.ts sharedBytes); a block Buffer reused for a restore is not.
      this.slab = this.builder === undefined ? Buffer.allocUnsafe(bytes) : sharedBytes(bytes);
      this.slabs.push(this.slab);
      this.at = 0;
    }
    this.blockStart = this.at;
    this.at += BLOCK_HEADER_SIZE;
  }

  /** Room for one entry of `size` bytes, after the pause every ENTRIES_PER_PAUSE entries. */
  private async room(size: number): Promise<void> {
    const pause = this.perEntries.tick();
    if (pause !== undefined) await pause;
    if (this.full(size)) await this.seal();
    this.open(size);
  }

  private async seal(): Promise<void> {
    sealBlock(this.slab, this.blockStart, this.at, BlockType.Keys, this.revision, this.count);
    await this.write(this.slab, this.blockStart, this.at);
    this.count = 0;
    if (this.builder === undefined) this.at = 0;
    await this.betweenBlocks();
  }

  /** Every entry written is checked as a reader will check it (its fields, the key order); returns its size. */
  private added(start: number): number {
    let checked: number | string;
    if (this.builder !== undefined) {
      checked = this.builder.add(this.slabs.length - 1, start, this.at, this.revision);
    } else {
      checked = checkEntry(this.slab, start, this.at, this.revision);
      if (typeof checked === 'number') {
        const keyStart = start + ENTRY_HEADER_SIZE;
        const key = this.slab.subarray(keyStart, keyStart + this.slab.readUInt32LE(start));
        const order = this.total === 0 ? -1 : this.lastKey.compare(key);
        if (order >= 0) checked = order === 0 ? 'a key appears twice' : 'keys out of order';
        this.lastKey = Buffer.from(key);
      }
    }
    if (typeof checked === 'string') throw new Error(`checkpoint writer: ${checked}`);
    this.count++;
    this.total++;
    return checked;
  }

  /** Copies ENTRY bytes buf[start, end) as they are, checked as a reader will check them. */
  async copyEntry(buf: Buffer, start: number, end: number): Promise<void> {
    await this.room(end - start);
    const entryAt = this.at;
    this.at += buf.copy(this.slab, entryAt, start, end);
    this.added(entryAt);
  }

  /**
   * Copies entries [i, limit) of `table` as they are, with one copy: as many
   * as lie back to back in its slab and fit in the block (entry i always),
   * and no more than are left before the next pause; returns how many. At a
   * million keys most of a checkpoint is such runs, a few entries long
   * between the keys changed since the last one.
   */
  async copyRun(table: KeyTable, i: number, limit: number): Promise<number> {
    const first = table.entrySize(i);
    if (this.full(first)) await this.seal();
    this.open(first);
    const space = Math.min(BLOCK_TARGET_BYTES - (this.at - this.blockStart), this.slab.length - this.at);
    const run = table.span(i, Math.min(limit, i + this.perEntries.left), space);
    const start = this.at;
    this.at += run.buf.copy(this.slab, start, run.start, run.end);
    if (this.builder === undefined) {
      for (let k = 0, at = start; k < run.count; k++) at += this.added(at);
    } else {
      // Checked when the table was built: not checked nor hashed again.
      const added = this.builder.addCopied(this.slabs.length - 1, start, table, i, run.count);
      if (typeof added === 'string') throw new Error(`checkpoint writer: ${added}`);
      this.count += run.count;
      this.total += run.count;
    }
    const pause = this.perEntries.tick(run.count);
    if (pause !== undefined) await pause;
    return run.count;
  }

  async encode(key: string, entry: StoredEntry): Promise<void> {
    const keyBytes = Buffer.byteLength(key, 'utf8');
    const valueBytes = Buffer.byteLength(entry.valueJson, 'utf8');
    await this.room(entrySize(keyBytes, valueBytes));
    const entryAt = this.at;
    this.at = writeEntry(this.slab, entryAt, key, keyBytes, entry, valueBytes);
    this.added(entryAt);
  }

  /** The keys written, and their table if kept. */
  async finish(): Promise<KeysWritten> {
    if (this.count > 0) await this.seal();
    return { count: this.total, table: this.builder === undefined ? KeyTable.empty : await this.builder.finishSharing(this.betweenBlocks) };
  }
}

/** Writes buf[start, end) at the file's next position. */
export type BlockWriter = (buf: Buffer, start: number, end: number) => Promise<void>;

/**
 * The head of the format: the file header, the leases and the KEYS blocks
 * `fill` puts in `capacity` (a KeyTable of them is kept; undefined: none).
 */
export async function writeKeys(
  write: BlockWriter,
  revision: number,
  leaseList: ReadonlyArray<{ id: number; ttlMs: number; private?: boolean }>,
  capacity: number | undefined,
  fill: (keys: KeyBlocks) => Promise<void>,
  betweenBlocks: BetweenBlocks,
): Promise<KeysWritten> {
  const header = encodeFileHeader({ kind: FileKind.Snapshot, baseRevision: revision, nonce: newFileNonce() });
  await write(header, 0, FILE_HEADER_SIZE);
  // Leases first, so that loading a key finds its lease.
  const leases = Buffer.allocUnsafe(leaseList.length * LEASE_GRANT_RECORD_SIZE);
  let at = 0;
  for (const lease of leaseList) at = writeLeaseGrantRecord(leases, at, revision, lease.id, lease.ttlMs, lease.private === true);
  await write(leases, 0, at);
  const keys = new KeyBlocks(capacity, revision, write, betweenBlocks);
  await fill(keys);
  return keys.finish();
}
