/**
 * The recent history of changes that watchers catch up from: every change
 * with revision >= oldestRevision, in revision order, bounded by a number of
 * changes and by bytes (an estimate of the memory the changes hold). Whole
 * revisions are evicted oldest first; the newest revision always stays, so
 * a watcher can always catch up to the present.
 */
import { type KeyChange, storedEntryBytes } from '../change';

export interface HistoryLimits {
  /** The most changes kept (a Clear counts once however many keys it removed). */
  maxChanges: number;
  /** The most bytes of keys and values kept (estimated in-memory size). */
  maxBytes: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxChanges: 100_000, maxBytes: 64 * 1024 * 1024 };

export class HistoryWindow {
  private changes: KeyChange[] = [];
  /** Index of the oldest change still kept; the array is trimmed when the dead prefix grows large. */
  private head = 0;
  private bytes = 0;
  private oldest: number;

  /** `revision`: the store revision the window starts after (it holds no change at or before it). */
  constructor(
    private readonly limits: HistoryLimits,
    revision: number,
  ) {
    this.oldest = revision + 1;
  }

  /** Every change with revision >= this is in the window. */
  get oldestRevision(): number {
    return this.oldest;
  }

  get size(): number {
    return this.changes.length - this.head;
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
    let lo = this.head;
    let hi = this.changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.changes[mid].revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** The change at a position (0 = the oldest kept). */
  at(position: number): KeyChange {
    return this.changes[this.head + position];
  }

  private evict(): void {
    const last = this.changes.length - 1;
    while (this.head <= last && (this.size > this.limits.maxChanges || this.bytes > this.limits.maxBytes)) {
      const revision = this.changes[this.head].revision;
      if (revision === this.changes[last].revision) break;
      while (this.changes[this.head].revision === revision) this.bytes -= changeBytes(this.changes[this.head++]);
      this.oldest = revision + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.head);
      this.head = 0;
    }
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
