/**
 * The recent history of changes that watchers catch up from: every change
 * with revision >= oldestRevision, in revision order, bounded by a number of
 * changes and by bytes (an estimate of the memory the changes hold). Whole
 * revisions are evicted oldest first; the newest revision always stays, so
 * a watcher can always catch up to the present.
 *
 * The oldest part may be packed: changes an engine keeps encoded (the file
 * engine's checkpoint carries the window it had) and decodes only when a
 * watcher reads them, so a restart brings the window back without building
 * an object per change.
 */
import { type KeyChange, storedEntryBytes } from '../change';

export interface HistoryLimits {
  /** The most changes kept (a Clear counts once however many keys it removed). */
  maxChanges: number;
  /** The most bytes of keys and values kept (estimated in-memory size). */
  maxBytes: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxChanges: 100_000, maxBytes: 64 * 1024 * 1024 };

/** Changes kept encoded, in revision order, decoded one at a time when read. */
export interface PackedChanges {
  readonly count: number;
  revisionAt(i: number): number;
  /** The estimated in-memory size of change i once decoded: the measure the byte limit uses. */
  bytesAt(i: number): number;
  changeAt(i: number): KeyChange;
}

/** What the window held at one moment: the changes stay readable however the window moves on. */
export interface HistoryView {
  /** Every change from this revision on is in the view. */
  readonly oldestRevision: number;
  readonly size: number;
  at(position: number): KeyChange;
}

export class HistoryWindow {
  /** The oldest changes, if packed: positions packedHead.. of it. */
  private packed: PackedChanges | undefined;
  private packedHead = 0;
  private changes: KeyChange[] = [];
  /** Index of the oldest change still kept; the array is trimmed when the dead prefix grows large. */
  private head = 0;
  private bytes = 0;
  private oldest: number;

  /**
   * `revision`: the store revision the window starts after (it holds no change
   * at or before it). With `packed`: it starts with those changes instead,
   * `revision` being the oldest revision they cover.
   */
  constructor(
    private readonly limits: HistoryLimits,
    revision: number,
    packed?: PackedChanges,
  ) {
    this.oldest = revision + 1;
    if (packed !== undefined) {
      this.oldest = revision;
      if (packed.count > 0) {
        this.packed = packed;
        for (let i = 0; i < packed.count; i++) this.bytes += packed.bytesAt(i);
        this.evict();
      }
    }
  }

  /** Every change with revision >= this is in the window. */
  get oldestRevision(): number {
    return this.oldest;
  }

  get size(): number {
    return this.packedSize + this.changes.length - this.head;
  }

  private get packedSize(): number {
    return this.packed === undefined ? 0 : this.packed.count - this.packedHead;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Appends the changes of one or more whole revisions, in revision order, then evicts past the limits. */
  push(changes: readonly KeyChange[]): void {
    for (const change of changes) {
      this.changes.push(change);
      this.bytes += changeBytes(change);
    }
    this.evict();
  }

  /** The position of the first change with revision >= `revision` (size-relative: 0 is the oldest kept), or size if none. */
  positionOf(revision: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.revisionAt(mid) < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The change at a position (0 = the oldest kept). */
  at(position: number): KeyChange {
    const packed = this.packedSize;
    if (position < packed) return (this.packed as PackedChanges).changeAt(this.packedHead + position);
    return this.changes[this.head + position - packed];
  }

  /** The revision of the change at a position, without decoding a packed one. */
  revisionAt(position: number): number {
    const packed = this.packedSize;
    if (position < packed) return (this.packed as PackedChanges).revisionAt(this.packedHead + position);
    return this.changes[this.head + position - packed].revision;
  }

  /** What the window holds now, readable while the window moves on (for a checkpoint to carry it). */
  view(): HistoryView {
    const packed = this.packed;
    const packedHead = this.packedHead;
    const packedSize = this.packedSize;
    const changes = this.changes.slice(this.head);
    return {
      oldestRevision: this.oldest,
      size: packedSize + changes.length,
      at: (position) =>
        position < packedSize ? (packed as PackedChanges).changeAt(packedHead + position) : changes[position - packedSize],
    };
  }

  private evict(): void {
    while (this.size > 1 && (this.size > this.limits.maxChanges || this.bytes > this.limits.maxBytes)) {
      const revision = this.revisionAt(0);
      if (revision === this.revisionAt(this.size - 1)) break;
      while (this.revisionAt(0) === revision) this.dropOldest();
      this.oldest = revision + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.head);
      this.head = 0;
    }
  }

  private dropOldest(): void {
    const packed = this.packed;
    if (packed !== undefined) {
      this.bytes -= packed.bytesAt(this.packedHead++);
      if (this.packedHead === packed.count) {
        this.packed = undefined;
        this.packedHead = 0;
      }
      return;
    }
    this.bytes -= changeBytes(this.changes[this.head++]);
  }
}

function changeBytes(change: KeyChange): number {
  switch (change.type) {
    // A previous entry may be held by nothing but this change: count it.
    case 'set':
      return storedEntryBytes(change.key, change.entry) + (change.prev === undefined ? 0 : storedEntryBytes(change.key, change.prev));
    case 'delete':
      return storedEntryBytes(change.key, change.prev);
    case 'clear': {
      let bytes = 2 * change.prefix.length + 64;
      for (const [key, entry] of change.removed) bytes += storedEntryBytes(key, entry);
      return bytes;
    }
  }
}
