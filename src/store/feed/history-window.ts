/**
 * The recent history of changes that watchers catch up from: every change
 * with revision >= oldestRevision, in revision order, bounded by a number of
 * changes and by bytes (an estimate of the memory the changes hold). Whole
 * revisions are evicted oldest first; the newest revision always stays, so
 * a watcher can always catch up to the present.
 *
 * An engine may pack all but the newest changes (packWith): keep them
 * encoded and make them objects again only when a watcher reads them. A
 * window of objects is old-generation garbage the collector keeps walking,
 * several objects per change and write; packed, it is a few large buffers.
 * (The file engine packs in its checkpoint format, so a checkpoint carries
 * the window by copying bytes, and a restart brings it back packed.)
 */
import { type KeyChange, keyChangeBytes } from '../change';

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
  /** Change i's keyChangeBytes (the byte limit's measure), exactly as the change itself counts. */
  bytesAt(i: number): number;
  changeAt(i: number): KeyChange;
}

/** Encodes a chunk of the window's changes (oldest first) into an engine's packed form. */
export type PackChanges = (changes: readonly KeyChange[]) => PackedChanges;

/**
 * Takes back a packed chunk the window has let go of (every change in it
 * evicted, and no view open that could still read it), for the packer to
 * reuse its memory.
 */
export type RecyclePacked = (packed: PackedChanges) => void;

/** The newest changes stay objects (watchers catching up near the present read them); older ones are packed this many at a time. */
export const PACK_CHUNK = 256;
/** ...or fewer, once they hold this many bytes (the window's measure): a chunk of large values is packed in several. */
export const PACK_CHUNK_BYTES = 16 * 1024 * 1024;

/** What the window held at one moment: the changes stay readable however the window moves on. */
export interface HistoryView {
  /** Every change from this revision on is in the view. */
  readonly oldestRevision: number;
  readonly size: number;
  /** The estimated in-memory size of its changes (the measure of the byte limit; packed, they take about half). */
  readonly bytes: number;
  at(position: number): KeyChange;
  revisionAt(position: number): number;
  /** Where a packed change is (so its bytes can be copied as they are); undefined if it is an object. */
  packedAt(position: number): { packed: PackedChanges; index: number } | undefined;
  /**
   * Done with the view: until every view taken is released, the window
   * gives no chunk it lets go of back to its packer (a view may still read
   * it). Releasing twice is harmless.
   */
  release(): void;
}

export class HistoryWindow {
  /** Packed chunks, oldest first; those before firstSegment are evicted. */
  private segments: PackedChanges[] = [];
  /**
   * Per segment, each change's revision and measure (bytesAt) side by side,
   * read from the packed form once as it is added. Eviction reads the oldest
   * change at every write, long after it was packed: a packed form keeps
   * each change's numbers a cache line or more apart (and in two places),
   * these four changes to a line.
   */
  private segmentMeta: Float64Array[] = [];
  /** Where each segment starts, counting every change ever packed (absolute packed positions). */
  private segmentStarts: number[] = [];
  private firstSegment = 0;
  /** Absolute packed position of the oldest packed change kept, and one past the newest. */
  private packedHead = 0;
  private packedEnd = 0;
  private changes: KeyChange[] = [];
  /** Each of `changes`' keyChangeBytes, counted once as it came (packing and eviction read them again). */
  private changeBytes: number[] = [];
  /** Index of the oldest change still kept; the array is trimmed when the dead prefix grows large. */
  private head = 0;
  private bytes = 0;
  private oldest: number;
  private pack: PackChanges | undefined;
  private recycle: RecyclePacked | undefined;
  /** Views taken and not yet released (see HistoryView.release). */
  private openViews = 0;
  /** Chunks let go of while a view was open: recycled once none is. */
  private letGo: PackedChanges[] = [];

  /**
   * `revision`: the store revision the window starts after (it holds no change
   * at or before it). With `packed`: it starts with those changes instead (in
   * revision order), `revision` being the oldest revision they cover.
   */
  constructor(
    private readonly limits: HistoryLimits,
    revision: number,
    packed?: readonly PackedChanges[],
  ) {
    this.oldest = revision + 1;
    if (packed !== undefined) {
      this.oldest = revision;
      for (const segment of packed) if (segment.count > 0) this.addSegment(segment);
      this.evict();
    }
  }

  /**
   * From now on the window packs its older changes with `pack` (see
   * PACK_CHUNK), and hands each packed chunk it lets go of to `recycle`
   * (if given) once no view can read it.
   */
  packWith(pack: PackChanges, recycle?: RecyclePacked): void {
    this.pack = pack;
    this.recycle = recycle;
    this.packOldest();
  }

  /** Every change with revision >= this is in the window. */
  get oldestRevision(): number {
    return this.oldest;
  }

  get size(): number {
    return this.packedSize + this.changes.length - this.head;
  }

  private get packedSize(): number {
    return this.packedEnd - this.packedHead;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Appends the changes of one or more whole revisions, in revision order, then evicts past the limits. */
  push(changes: readonly KeyChange[]): void {
    for (const change of changes) {
      const bytes = keyChangeBytes(change);
      this.changes.push(change);
      this.changeBytes.push(bytes);
      this.bytes += bytes;
    }
    this.evict();
    this.packOldest();
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
    if (position < this.packedSize) {
      const at = this.packedHead + position;
      const segment = this.segmentOf(at);
      return this.segments[segment].changeAt(at - this.segmentStarts[segment]);
    }
    return this.changes[this.head + position - this.packedSize];
  }

  /** The revision of the change at a position, without decoding a packed one. */
  revisionAt(position: number): number {
    if (position < this.packedSize) {
      const at = this.packedHead + position;
      const segment = this.segmentOf(at);
      return this.segmentMeta[segment][2 * (at - this.segmentStarts[segment])];
    }
    return this.changes[this.head + position - this.packedSize].revision;
  }

  /** What the window holds now, readable while the window moves on (for a checkpoint to carry it). */
  view(): HistoryView {
    const frozen = new HistoryWindow(this.limits, 0);
    frozen.segments = this.segments.slice(this.firstSegment);
    frozen.segmentMeta = this.segmentMeta.slice(this.firstSegment);
    frozen.segmentStarts = this.segmentStarts.slice(this.firstSegment);
    frozen.packedHead = this.packedHead;
    frozen.packedEnd = this.packedEnd;
    frozen.changes = this.changes.slice(this.head);
    frozen.oldest = this.oldest;
    this.openViews++;
    let released = false;
    return {
      oldestRevision: frozen.oldest,
      size: frozen.size,
      bytes: this.bytes,
      at: (position) => frozen.at(position),
      revisionAt: (position) => frozen.revisionAt(position),
      packedAt: (position) => {
        if (position >= frozen.packedSize) return undefined;
        const at = frozen.packedHead + position;
        const segment = frozen.segmentOf(at);
        return { packed: frozen.segments[segment], index: at - frozen.segmentStarts[segment] };
      },
      release: () => {
        if (released) return;
        released = true;
        if (--this.openViews > 0 || this.recycle === undefined) return;
        for (const packed of this.letGo) this.recycle(packed);
        this.letGo = [];
      },
    };
  }

  /**
   * The segment holding absolute packed position `at` (its index in
   * `segments`). A number, not an object: eviction and the revision checks
   * ask at every write.
   */
  private segmentOf(at: number): number {
    const starts = this.segmentStarts;
    // Eviction reads the oldest change at every write: its segment is the first.
    if (at - starts[this.firstSegment] < this.segments[this.firstSegment].count) return this.firstSegment;
    let lo = this.firstSegment;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Adds a packed chunk; `measures[from + i]`, if given, is change i's bytesAt (counted before it was packed). */
  private addSegment(packed: PackedChanges, measures?: readonly number[], from = 0): void {
    const meta = new Float64Array(2 * packed.count);
    for (let i = 0; i < packed.count; i++) {
      meta[2 * i] = packed.revisionAt(i);
      meta[2 * i + 1] = measures === undefined ? packed.bytesAt(i) : measures[from + i];
      this.bytes += meta[2 * i + 1];
    }
    this.segments.push(packed);
    this.segmentMeta.push(meta);
    this.segmentStarts.push(this.packedEnd);
    this.packedEnd += packed.count;
  }

  /**
   * Packs the oldest PACK_CHUNK objects (fewer if they pass PACK_CHUNK_BYTES)
   * while 2 × PACK_CHUNK or more are unpacked. A chunk leaves the objects
   * only once packed: if packing threw, the window would still hold it.
   */
  private packOldest(): void {
    const pack = this.pack;
    if (pack === undefined) return;
    while (this.changes.length - this.head >= 2 * PACK_CHUNK) {
      let end = this.head;
      let chunkBytes = 0;
      while (end < this.head + PACK_CHUNK && (end === this.head || chunkBytes < PACK_CHUNK_BYTES)) chunkBytes += this.changeBytes[end++];
      const packed = pack(this.changes.slice(this.head, end));
      this.bytes -= chunkBytes;
      this.addSegment(packed, this.changeBytes, this.head);
      this.head = end;
    }
    this.trim();
  }

  private evict(): void {
    while (this.size > 1 && (this.size > this.limits.maxChanges || this.bytes > this.limits.maxBytes)) {
      const revision = this.revisionAt(0);
      if (revision === this.revisionAt(this.size - 1)) break;
      while (this.revisionAt(0) === revision) this.dropOldest();
      this.oldest = revision + 1;
    }
    this.trim();
  }

  private trim(): void {
    if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.head);
      this.changeBytes = this.changeBytes.slice(this.head);
      this.head = 0;
    }
    if (this.firstSegment > 64 && this.firstSegment * 2 > this.segments.length) {
      this.segments = this.segments.slice(this.firstSegment);
      this.segmentMeta = this.segmentMeta.slice(this.firstSegment);
      this.segmentStarts = this.segmentStarts.slice(this.firstSegment);
      this.firstSegment = 0;
    }
  }

  private dropOldest(): void {
    if (this.packedSize > 0) {
      const at = this.packedHead++;
      const segment = this.segmentOf(at);
      const index = at - this.segmentStarts[segment];
      this.bytes -= this.segmentMeta[segment][2 * index + 1];
      if (index === this.segments[segment].count - 1) {
        if (this.recycle !== undefined) {
          if (this.openViews === 0) this.recycle(this.segments[segment]);
          else this.letGo.push(this.segments[segment]);
        }
        this.firstSegment++;
      }
      return;
    }
    this.bytes -= this.changeBytes[this.head++];
  }
}
