/**
 * The history a checkpoint carries (its HISTORY blocks), as the history
 * window's packed changes: the bytes stay in the Buffers the checkpoint was
 * read into, and a change becomes a JS object only when a watcher reads it.
 */
import type { KeyChange } from '../change';
import type { PackedChanges } from '../feed/history-window';
import { decodeChangeAt } from './checkpoint-codec';

export class CheckpointHistory implements PackedChanges {
  private added = 0;
  private readonly slabOf: Uint16Array;
  private readonly offsets: Uint32Array;
  private readonly revisions: Float64Array;
  private readonly bytes: Float64Array;

  constructor(
    private readonly slabs: readonly Buffer[],
    private readonly capacity: number,
  ) {
    this.slabOf = new Uint16Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.revisions = new Float64Array(capacity);
    this.bytes = new Float64Array(capacity);
  }

  get count(): number {
    return this.added;
  }

  /** Adds the (checked) change at `offset` of slab `slab`, of `size` bytes; false if there is no room left. */
  add(slab: number, offset: number, size: number, revision: number): boolean {
    const i = this.added;
    if (i === this.capacity) return false;
    this.slabOf[i] = slab;
    this.offsets[i] = offset;
    this.revisions[i] = revision;
    // Decoded, each byte of key and value becomes about two (UTF-16), plus the objects: history-window.ts's measure.
    this.bytes[i] = 2 * size;
    this.added = i + 1;
    return true;
  }

  revisionAt(i: number): number {
    return this.revisions[i];
  }

  bytesAt(i: number): number {
    return this.bytes[i];
  }

  changeAt(i: number): KeyChange {
    return decodeChangeAt(this.slabs[this.slabOf[i]], this.offsets[i]);
  }
}
