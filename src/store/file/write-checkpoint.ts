/**
 * Writes a checkpoint (checkpoint-codec.ts) of a frozen index view and the
 * history window as it was at the same moment, and returns the key table of
 * what it wrote: the Buffers written to the file become the index's new base
 * (store-index.ts replaceBase), so nothing is read back.
 *
 * Keys go out in code point order: the view's base table merged with the
 * keys its layers created. Base entries no layer mentions are copied as bytes,
 * a run of them at a time; only keys the layers changed are encoded from
 * their entries. The file is
 * written one block (about 1 MiB) at a time; after each block, every 512
 * entries or changes put in a block and every 1,024 keys of the other long
 * loops, the caller's `betweenBlocks` is awaited: it may pause the writer,
 * so that writes and reads get the event loop (compact.ts), or throw to stop
 * it.
 *
 * This is the one writer of snapshot files: a restore (writeSnapshotFile)
 * writes a checkpoint too, from a backup's entries and without history.
 */
import fs from 'node:fs';
import type { StoredEntry } from '../change';
import type { HistoryView } from '../feed/history-window';
import { keyOfSortKey } from '../key-order';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_TARGET_BYTES,
  BlockType,
  ENTRY_HEADER_SIZE,
  changeSize,
  checkEntry,
  encodeChange,
  encodeEnd,
  entrySize,
  sealBlock,
  writeEntry,
} from './checkpoint-codec';
import { KeyTable, KeyTableBuilder } from './key-table';
import { PackedColumns, encodedRangeBytes } from './packed-columns';
import { PackedHistory } from './packed-history';
import { FILE_HEADER_SIZE, FileKind, LEASE_GRANT_RECORD_SIZE, encodeFileHeader, newFileNonce, writeLeaseGrantRecord } from './record-codec';
import type { IndexSnapshot, Layer } from './store-index';

/**
 * The Buffers the keys are written into (and then kept in, as the new table).
 * Under glibc's largest mmap threshold (32 MiB): a larger Buffer is a fresh
 * mapping each time, every page of it faulted in and zeroed by the kernel at
 * every checkpoint (copying 160 MiB into 64 MiB slabs took 165 ms, 95 of them
 * in the kernel; into 16 MiB slabs, which reuse the memory of the table
 * before, 50–60 ms).
 */
const SLAB_BYTES = 16 * 1024 * 1024;

export interface WrittenCheckpoint {
  bytes: number;
  historyBytes: number;
  table: KeyTable;
}

/** Awaited between blocks: resolves when the writer may go on, rejects to stop it. */
export type BetweenBlocks = () => Promise<void> | void;

/** How many keys a loop over keys handles between two calls of BetweenBlocks. */
const KEYS_PER_PAUSE = 1024;
/** How many entries go into a block between two calls of BetweenBlocks (a block of small entries holds thousands). */
const ENTRIES_PER_PAUSE = 512;

/**
 * `betweenBlocks` on every n-th item of a long loop, counted one at a time
 * or a run at a time (a run of at most `left` items). Returns undefined when
 * there is nothing to wait for, so that the loop does not await (a turn of
 * the microtask queue) per item.
 */
class EveryNth {
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

/**
 * Writes the checkpoint of `view` (revision `view.revision`) with `history`
 * (undefined: none; after a restart the history then starts after this
 * revision) to `filePath` (which must not exist), then fdatasyncs it.
 * `betweenBlocks` is awaited after each block is written; it throws to stop.
 */
export async function writeCheckpoint(
  filePath: string,
  view: IndexSnapshot,
  history: HistoryView | undefined,
  betweenBlocks: BetweenBlocks,
): Promise<WrittenCheckpoint> {
  // The history a view can give goes up to the moment it was taken; a change after the checkpoint's revision would be replayed twice.
  if (history !== undefined && history.size > 0 && history.revisionAt(history.size - 1) > view.revision)
    throw new Error('history newer than the checkpoint');
  return writeFile(
    filePath,
    view.revision,
    view.leases,
    view.size,
    (keys) => forEachLiveEntry(view, keys, betweenBlocks),
    history,
    betweenBlocks,
  );
}

/** What a snapshot file holds: the live leases, then every key in code point order. A restore builds one from a backup. */
export interface SnapshotContents {
  readonly leases: ReadonlyArray<{ id: number; ttlMs: number; private?: boolean }>;
  entries(): Iterable<readonly [string, StoredEntry]>;
}

/**
 * Writes `contents` as a checkpoint of revision `revision`, without history,
 * to `filePath` (which must not exist), then fdatasyncs it; returns the
 * file's size. The entries go out as they come (they must be in code point
 * order) and are not kept in memory.
 */
export async function writeSnapshotFile(
  filePath: string,
  revision: number,
  contents: SnapshotContents,
  betweenBlocks: BetweenBlocks = () => undefined,
): Promise<number> {
  const write = async (keys: KeyBlocks): Promise<void> => {
    for (const [key, entry] of contents.entries()) await keys.encode(key, entry);
  };
  const written = await writeFile(filePath, revision, contents.leases, undefined, write, undefined, betweenBlocks);
  return written.bytes;
}

/** The one writer of the format: header, leases, KEYS blocks, history blocks, END; then fdatasync. */
async function writeFile(
  filePath: string,
  revision: number,
  leaseList: ReadonlyArray<{ id: number; ttlMs: number; private?: boolean }>,
  capacity: number | undefined,
  writeKeys: (keys: KeyBlocks) => Promise<void>,
  history: HistoryView | undefined,
  betweenBlocks: BetweenBlocks,
): Promise<WrittenCheckpoint> {
  const fh = await fs.promises.open(filePath, 'wx', 0o600);
  try {
    let position = 0;
    const write = async (buf: Buffer, start: number, end: number): Promise<void> => {
      let done = start;
      while (done < end) done += (await fh.write(buf, done, end - done, position + (done - start))).bytesWritten;
      position += end - start;
    };
    const header = encodeFileHeader({ kind: FileKind.Snapshot, baseRevision: revision, nonce: newFileNonce() });
    await write(header, 0, FILE_HEADER_SIZE);
    // Leases first, so that loading a key finds its lease.
    const leases = Buffer.allocUnsafe(leaseList.length * LEASE_GRANT_RECORD_SIZE);
    let at = 0;
    for (const lease of leaseList) at = writeLeaseGrantRecord(leases, at, revision, lease.id, lease.ttlMs, lease.private === true);
    await write(leases, 0, at);

    const keys = new KeyBlocks(capacity, revision, write, betweenBlocks);
    await writeKeys(keys);
    const { count, table } = await keys.finish();

    const changes = new HistoryBlocks(revision, write, betweenBlocks);
    const size = history?.size ?? 0;
    const from = history?.oldestRevision ?? revision + 1;
    for (let i = 0; i < size;) {
      // Packed changes are in this format already: copied as they are, a run at a time, not decoded and encoded again.
      const packed = (history as HistoryView).packedAt(i);
      if (packed?.packed instanceof PackedColumns) {
        i += await changes.copyColumns(packed.packed, packed.index, size - i);
      } else if (packed?.packed instanceof PackedHistory) {
        i += await changes.copy(packed.packed, packed.index, size - i);
      } else {
        await changes.add((history as HistoryView).at(i));
        i++;
      }
    }
    const historyBytes = await changes.finish();

    const end = encodeEnd({ revision, keys: count, changes: size, historyFrom: from, leases: leaseList.length });
    await write(end, 0, end.length);
    await fh.datasync();
    return { bytes: position, historyBytes, table };
  } finally {
    await fh.close();
  }
}

/** Where a checkpoint's keys go: KEYS blocks in slabs, each block written to the file once full. */
class KeyBlocks {
  /** betweenBlocks, every ENTRIES_PER_PAUSE entries put in a block. */
  private readonly perEntries: EveryNth;
  private readonly slabs: Buffer[] = [];
  private readonly builder: KeyTableBuilder | undefined;
  private slab = Buffer.alloc(0);
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
      const bytes = this.builder === undefined ? 2 * BLOCK_TARGET_BYTES : SLAB_BYTES;
      this.slab = Buffer.allocUnsafe(Math.max(bytes, BLOCK_HEADER_SIZE + size));
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
  async finish(): Promise<{ count: number; table: KeyTable }> {
    if (this.count > 0) await this.seal();
    return { count: this.total, table: this.builder === undefined ? KeyTable.empty : await this.builder.finishSharing(this.betweenBlocks) };
  }
}

/** Where a checkpoint's history goes: HISTORY blocks, each written once full, and HISTORY_COLUMNS blocks copied from packed columns. */
class HistoryBlocks {
  /** betweenBlocks, every ENTRIES_PER_PAUSE entries put in a block. */
  private readonly perEntries: EveryNth;
  private buf = Buffer.allocUnsafe(BLOCK_TARGET_BYTES);
  private at = BLOCK_HEADER_SIZE;
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly revision: number,
    private readonly write: (buf: Buffer, start: number, end: number) => Promise<void>,
    private readonly betweenBlocks: BetweenBlocks,
  ) {
    this.perEntries = new EveryNth(ENTRIES_PER_PAUSE, betweenBlocks);
  }

  async add(change: Parameters<typeof encodeChange>[2]): Promise<void> {
    await this.room(changeSize(change));
    this.at = encodeChange(this.buf, this.at, change);
    this.count++;
  }

  /** Copies packed changes from `index` on (at most `limit`): as many as lie back to back and fit in the block; returns how many. */
  async copy(packed: PackedHistory, index: number, limit: number): Promise<number> {
    let run = packed.run(index, this.buf.length - this.at, limit);
    if (this.count > 0 && this.at + (run.end - run.start) > this.buf.length) {
      await this.seal();
      run = packed.run(index, this.buf.length - this.at, limit);
    }
    await this.room(run.end - run.start);
    this.at += run.buf.copy(this.buf, this.at, run.start, run.end);
    this.count += run.count;
    return run.count;
  }

  /**
   * Writes packed columns from `index` on (at most `limit`, at least one) as
   * a HISTORY_COLUMNS block of about BLOCK_TARGET_BYTES, after sealing the
   * HISTORY block being filled; returns how many.
   */
  async copyColumns(packed: PackedColumns, index: number, limit: number): Promise<number> {
    if (this.count > 0) await this.seal();
    const last = Math.min(packed.count, index + limit);
    let to = index + 1;
    while (to < last && BLOCK_HEADER_SIZE + encodedRangeBytes(packed, index, to + 1) <= BLOCK_TARGET_BYTES) to++;
    const block = Buffer.allocUnsafe(BLOCK_HEADER_SIZE + encodedRangeBytes(packed, index, to));
    const end = packed.encodeRange(index, to, block, BLOCK_HEADER_SIZE);
    sealBlock(block, 0, end, BlockType.HistoryColumns, this.revision, to - index);
    await this.write(block, 0, end);
    this.bytes += end;
    await this.betweenBlocks();
    return to - index;
  }

  /** Makes room for a change of `size` bytes: seals the block if it would not fit, and grows the buffer for one that fits no block. */
  private async room(size: number): Promise<void> {
    // Changes that were not packed are encoded one by one: as for keys, a pause every few hundred.
    const pause = this.perEntries.tick();
    if (pause !== undefined) await pause;
    if (this.count > 0 && this.at + size > this.buf.length) await this.seal();
    if (BLOCK_HEADER_SIZE + size > this.buf.length) this.buf = Buffer.allocUnsafe(BLOCK_HEADER_SIZE + size);
  }

  private async seal(): Promise<void> {
    sealBlock(this.buf, 0, this.at, BlockType.History, this.revision, this.count);
    await this.write(this.buf, 0, this.at);
    this.bytes += this.at;
    this.at = BLOCK_HEADER_SIZE;
    this.count = 0;
    await this.betweenBlocks();
  }

  async finish(): Promise<number> {
    if (this.count > 0) await this.seal();
    return this.bytes;
  }
}

/** A layer's new keys, merged: the smallest key not yet written and its UTF-8 bytes. */
class LayerKeys {
  private readonly sources: Array<{ keys: Iterator<string>; head: string | undefined }>;
  head: string | undefined;
  headBytes = Buffer.alloc(0);

  constructor(layers: readonly Layer[]) {
    this.sources = layers.map((layer) => {
      if (layer.newKeys === undefined) throw new Error('a frozen layer without its key order');
      const keys = layer.newKeys.keys();
      const first = keys.next();
      return { keys, head: first.done === true ? undefined : first.value };
    });
    this.pick();
  }

  /** Moves past the current head (in every source that has it). */
  advance(): void {
    const done = this.head;
    for (const s of this.sources) {
      if (s.head !== done) continue;
      const next = s.keys.next();
      s.head = next.done === true ? undefined : next.value;
    }
    this.pick();
  }

  private pick(): void {
    let min: string | undefined;
    for (const s of this.sources) if (s.head !== undefined && (min === undefined || s.head < min)) min = s.head;
    this.head = min;
    if (min !== undefined) this.headBytes = Buffer.from(keyOfSortKey(min), 'utf8');
  }
}

/** The entry of `key` in the newest layer that mentions it: undefined if none does, null if deleted there. */
function inLayers(layers: readonly Layer[], key: string): StoredEntry | null | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const e = layers[i].changes.get(key);
    if (e !== undefined) return e;
  }
  return undefined;
}

/** Compares the key of table entry bytes at buf[start] with `key` (UTF-8) as bytes. */
function compareEntryKey(buf: Buffer, start: number, key: Buffer): number {
  const keyStart = start + ENTRY_HEADER_SIZE;
  return buf.compare(key, 0, key.length, keyStart, keyStart + buf.readUInt32LE(start));
}

/** Writes every live entry of the view, in code point order. */
async function forEachLiveEntry(view: IndexSnapshot, out: KeyBlocks, betweenBlocks: BetweenBlocks): Promise<void> {
  const { base, layers } = view;
  // Table entries some layer mentions (changed or deleted since): the rest are copied as bytes.
  // (A lookup per changed key: at a million keys, a long loop that must not hold the event loop.)
  const touched = new Uint8Array(base.count);
  const perKeys = new EveryNth(KEYS_PER_PAUSE, betweenBlocks);
  for (const layer of layers) {
    for (const key of layer.changes.keys()) {
      const i = base.count === 0 ? -1 : base.find(key);
      if (i >= 0) touched[i] = 1;
      const pause = perKeys.tick();
      if (pause !== undefined) await pause;
    }
  }
  const created = new LayerKeys(layers);
  const writeLayerKey = async (): Promise<void> => {
    const key = keyOfSortKey(created.head as string);
    const entry = inLayers(layers, key);
    if (entry !== undefined && entry !== null) await out.encode(key, entry);
    created.advance();
  };
  // The table position of the first entry at or after the next created key: a run copied as bytes stops before it.
  let createdFor: string | undefined;
  let createdAt = base.count;
  for (let i = 0; i < base.count;) {
    const raw = base.raw(i);
    let order = 1;
    while (created.head !== undefined && (order = compareEntryKey(raw.buf, raw.start, created.headBytes)) > 0) await writeLayerKey();
    // A key created above a deletion of the same table key: written once, below.
    if (created.head !== undefined && order === 0) created.advance();
    if (touched[i] === 0) {
      if (createdFor !== created.head) {
        createdFor = created.head;
        createdAt = created.head === undefined ? base.count : base.seek(keyOfSortKey(created.head));
      }
      // Untouched entries up to the next touched one or created key, no more than are left before the next pause.
      let limit = i + 1;
      const most = Math.min(createdAt, base.count, i + perKeys.left);
      while (limit < most && touched[limit] === 0) limit++;
      const copied = await out.copyRun(base, i, limit);
      i += copied;
      const pause = perKeys.tick(copied);
      if (pause !== undefined) await pause;
      continue;
    }
    // Touched: some layer has the key's entry (null if deleted there).
    const key = base.key(i);
    const entry = inLayers(layers, key) as StoredEntry | null;
    if (entry !== null) await out.encode(key, entry);
    i++;
    // Table keys deleted since are neither copied nor encoded: counted all the same, so a long run of them (a clear) pauses too.
    const pause = perKeys.tick();
    if (pause !== undefined) await pause;
  }
  while (created.head !== undefined) await writeLayerKey();
}
