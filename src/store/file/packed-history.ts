/**
 * The history a checkpoint carries in HISTORY blocks, as the history
 * window's packed changes: the bytes stay in the Buffers the checkpoint was
 * read into, a change becomes a JS object only when a watcher reads it, and
 * the next checkpoint copies its bytes as they are. The window packs chunks
 * with a Clear this way too; sets and deletes it packs as columns
 * (packed-columns.ts, HISTORY_COLUMNS blocks).
 */
import { type KeyChange, keyChangeBytes } from '../change';
import type { PackChanges, PackedChanges, RecyclePacked } from '../feed/history-window';
import { changeSize, decodeChangeAt, encodeChange } from './checkpoint-codec';
import { ColumnsPool, PackedColumns, packColumns } from './packed-columns';

export { MAX_JOINED_CHARS } from './packed-columns';

export class PackedHistory implements PackedChanges {
  private added = 0;
  private readonly slabOf: Uint16Array;
  private readonly offsets: Uint32Array;
  private readonly sizes: Uint32Array;
  private readonly revisions: Float64Array;
  private readonly measures: Float64Array;

  constructor(
    readonly slabs: Buffer[],
    private readonly capacity: number,
  ) {
    this.slabOf = new Uint16Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.sizes = new Uint32Array(capacity);
    this.revisions = new Float64Array(capacity);
    this.measures = new Float64Array(capacity);
  }

  get count(): number {
    return this.added;
  }

  /**
   * Adds the (checked) change at `offset` of slab `slab`, of `size` bytes,
   * whose keyChangeBytes is `measure`; false if there is no room left.
   */
  add(slab: number, offset: number, size: number, revision: number, measure: number): boolean {
    const i = this.added;
    if (i === this.capacity) return false;
    this.slabOf[i] = slab;
    this.offsets[i] = offset;
    this.sizes[i] = size;
    this.revisions[i] = revision;
    this.measures[i] = measure;
    this.added = i + 1;
    return true;
  }

  revisionAt(i: number): number {
    return this.revisions[i];
  }

  bytesAt(i: number): number {
    return this.measures[i];
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
 * Packs a chunk of the window's changes: sets and deletes as columns
 * (packed-columns.ts); a chunk with a Clear (rare: it carries a whole key
 * set), or with more text than one string may hold (MAX_JOINED_CHARS),
 * change by change in the HISTORY layout.
 */
export function packHistory(changes: readonly KeyChange[], pool?: ColumnsPool): PackedChanges {
  return packColumns(changes, pool) ?? packEach(changes);
}

/**
 * packHistory for one window (HistoryWindow.packWith), and its recycler:
 * columns are packed into buffers of chunks the window has let go of
 * (ColumnsPool).
 */
export function historyPacker(): { pack: PackChanges; recycle: RecyclePacked } {
  const pool = new ColumnsPool();
  return {
    pack: (changes) => packHistory(changes, pool),
    recycle: (packed) => {
      if (packed instanceof PackedColumns && packed.slab !== undefined) pool.give(packed.slab);
    },
  };
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
    packed.add(0, at, end - at, change.revision, keyChangeBytes(change));
    at = end;
  }
  return packed;
}
