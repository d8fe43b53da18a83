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
 * it. For a large table the keys are written by a worker thread instead
 * (checkpoint-keys-worker.ts): then `betweenBlocks` is awaited every 1,024
 * changed keys and every 1 MiB as they are encoded for it, and once the
 * caller asks to stop.
 *
 * This is the one writer of snapshot files: a restore (writeSnapshotFile)
 * writes a checkpoint too, from a backup's entries and without history.
 */
import fs from 'node:fs';
import type { ResourceLimits } from 'node:worker_threads';
import type { StoredEntry } from '../change';
import type { HistoryView } from '../feed/history-window';
import { keyOfSortKey } from '../key-order';
import {
  BLOCK_HEADER_SIZE,
  BLOCK_TARGET_BYTES,
  BlockType,
  ENTRY_HEADER_SIZE,
  changeSize,
  encodeChange,
  encodeEnd,
  sealBlock,
} from './checkpoint-codec';
import { writeKeysOffThread } from './checkpoint-keys-worker';
import {
  type BetweenBlocks,
  type BlockWriter,
  ENTRIES_PER_PAUSE,
  EveryNth,
  KEYS_PER_PAUSE,
  type KeyBlocks,
  type KeysWritten,
  writeKeys,
} from './key-blocks';
import type { KeyTable } from './key-table';
import { PackedColumns, encodedRangeBytes } from './packed-columns';
import { PackedHistory } from './packed-history';
import type { IndexSnapshot, Layer } from './store-index';

export interface WrittenCheckpoint {
  bytes: number;
  historyBytes: number;
  table: KeyTable;
}

/**
 * Writes the checkpoint of `view` (revision `view.revision`) with `history`
 * (undefined: none; after a restart the history then starts after this
 * revision) to `filePath` (which must not exist), then fdatasyncs it.
 * `betweenBlocks` is awaited after each block is written; it throws to stop.
 * With `offThread`, the keys are written by a worker thread
 * (checkpoint-keys-worker.ts) while this one only encodes the changed
 * entries (`stopping` is asked meanwhile); the history and the END record
 * are written here either way.
 */
export async function writeCheckpoint(
  filePath: string,
  view: IndexSnapshot,
  history: HistoryView | undefined,
  betweenBlocks: BetweenBlocks,
  offThread?: { stopping: () => boolean; resourceLimits?: ResourceLimits },
): Promise<WrittenCheckpoint> {
  // The history a view can give goes up to the moment it was taken; a change after the checkpoint's revision would be replayed twice.
  if (history !== undefined && history.size > 0 && history.revisionAt(history.size - 1) > view.revision)
    throw new Error('history newer than the checkpoint');
  if (offThread !== undefined) {
    const keys = await writeKeysOffThread(filePath, view, betweenBlocks, offThread.stopping, offThread.resourceLimits);
    return writeFile(filePath, view.revision, view.leases, keys, history, betweenBlocks);
  }
  const keys = (write: BlockWriter): Promise<KeysWritten> =>
    writeKeys(write, view.revision, view.leases, view.size, (out) => forEachLiveEntry(view, out, betweenBlocks), betweenBlocks);
  return writeFile(filePath, view.revision, view.leases, keys, history, betweenBlocks);
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
  const fill = async (keys: KeyBlocks): Promise<void> => {
    for (const [key, entry] of contents.entries()) await keys.encode(key, entry);
  };
  const keys = (write: BlockWriter): Promise<KeysWritten> => writeKeys(write, revision, contents.leases, undefined, fill, betweenBlocks);
  const written = await writeFile(filePath, revision, contents.leases, keys, undefined, betweenBlocks);
  return written.bytes;
}

/**
 * The one writer of the format: header, leases, KEYS blocks (`keys` writes
 * them, or a worker thread wrote them already: then the file exists and they
 * end at `bytes`), history blocks, END; then fdatasync.
 */
async function writeFile(
  filePath: string,
  revision: number,
  leaseList: ReadonlyArray<{ id: number; ttlMs: number; private?: boolean }>,
  keys: ((write: BlockWriter) => Promise<KeysWritten>) | (KeysWritten & { bytes: number }),
  history: HistoryView | undefined,
  betweenBlocks: BetweenBlocks,
): Promise<WrittenCheckpoint> {
  const written = typeof keys === 'function' ? undefined : keys;
  const fh = await fs.promises.open(filePath, written === undefined ? 'wx' : 'r+', 0o600);
  try {
    let position = written?.bytes ?? 0;
    const write = async (buf: Buffer, start: number, end: number): Promise<void> => {
      let done = start;
      while (done < end) done += (await fh.write(buf, done, end - done, position + (done - start))).bytesWritten;
      position += end - start;
    };
    const { count, table } = written ?? (await (keys as (write: BlockWriter) => Promise<KeysWritten>)(write));

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

/** Where a checkpoint's history goes: HISTORY blocks, each written once full, and HISTORY_COLUMNS blocks copied from packed columns. */
class HistoryBlocks {
  /** betweenBlocks, every ENTRIES_PER_PAUSE entries put in a block. */
  private readonly perEntries: EveryNth;
  private buf = Buffer.allocUnsafe(BLOCK_TARGET_BYTES);
  /** Where HISTORY_COLUMNS blocks are made (copyColumns). */
  private columnsBlock: Buffer | undefined;
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
    const bytes = BLOCK_HEADER_SIZE + encodedRangeBytes(packed, index, to);
    // One buffer for every such block (each is written before the next is made): a new one each would be
    // external memory turned over by the megabyte, which sets off full collections.
    if (this.columnsBlock === undefined || this.columnsBlock.length < bytes)
      this.columnsBlock = Buffer.allocUnsafe(Math.max(bytes, BLOCK_TARGET_BYTES));
    const block = this.columnsBlock;
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
    const entry = inLayers(layers, key);
    if (entry === undefined) throw new Error('checkpoint writer: a changed table key is in no layer');
    if (entry !== null) await out.encode(key, entry);
    i++;
    // Table keys deleted since are neither copied nor encoded: counted all the same, so a long run of them (a clear) pauses too.
    const pause = perKeys.tick();
    if (pause !== undefined) await pause;
  }
  while (created.head !== undefined) await writeLayerKey();
}
