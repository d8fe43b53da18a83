/**
 * One watch on the change feed. A watcher is either live (in the registry:
 * publish hands it the matching events of each new revision) or catching up
 * (not in the registry: next() reads the history window from its cursor).
 * It starts catching up when it asks for history, and falls back to it when
 * its consumer stops taking events and its queue passes the bound: the
 * queue is dropped and the window serves it again from the first revision
 * it has not been given. So a slow consumer costs the writer nothing and
 * holds at most its queue bound; it is ended (WatchTooSlowError) only once
 * the window no longer holds what it still needs.
 */
import type { KeyChange, StoredEntry } from '../change';
import { StoreClosedError, WatchCompactedError, WatchTooSlowError } from '../errors';
import type { Watch, WatchBatch, WatchEvent } from '../key-value-store';
import type { HistoryWindow } from './history-window';
import type { WatchTarget } from './watcher-registry';

/** What a watcher needs from the feed it is on. */
export interface FeedView {
  /** The last revision published. */
  readonly revision: number;
  readonly window: HistoryWindow;
  readonly limits: WatcherLimits;
  /** Starts handing the watcher the events of each revision published. */
  goLive(watcher: FeedWatcher): void;
  /** Stops that (the watcher reads the window instead). */
  goCatchingUp(watcher: FeedWatcher): void;
  /** Forgets the watcher. */
  leave(watcher: FeedWatcher): void;
}

export interface WatcherLimits {
  /** Queued bytes past which a live watcher falls back to the history window. */
  maxQueueBytes: number;
  /** A catch-up batch stops at the first revision boundary past this many events... */
  maxBatchEvents: number;
  /** ...or this many bytes (estimated). */
  maxBatchBytes: number;
}

type Wake = 'events' | 'progress' | 'ended';

export class FeedWatcher implements Watch {
  private state: 'live' | 'catching-up' = 'catching-up';
  /** The first revision not yet given to the consumer; a live watcher ignores events before it (a start in the future). */
  private nextRevision: number;
  private queue: WatchEvent[] = [];
  private queueBytes = 0;
  private waiter: ((wake: Wake) => void) | undefined;
  private error: Error | undefined;
  /** When the consumer was last given a batch (ms since the epoch): progress is due an interval after. */
  lastGivenAt = Date.now();
  /** A watch from now first gives where "now" was (fromNow): no events, current to startRevision - 1. */
  private announce: boolean;

  constructor(
    private readonly feed: FeedView,
    readonly target: WatchTarget,
    private readonly startRevision: number,
    private readonly prevEntry: boolean,
    /**
     * The watch was asked for from now (start revision 0, made startRevision
     * here): its first batch says which revision it starts after, so that a
     * client that loses the stream before any change can resume from there
     * instead of from a later "now" (a silent gap).
     */
    fromNow = false,
  ) {
    this.nextRevision = startRevision;
    this.announce = fromNow;
  }

  get isLive(): boolean {
    return this.state === 'live';
  }

  get isWaiting(): boolean {
    return this.waiter !== undefined;
  }

  /** Called by the feed right after construction: live at once unless it asked for history. */
  start(): void {
    if (this.nextRevision > this.feed.revision) this.becomeLive();
  }

  async next(): Promise<WatchBatch> {
    if (this.announce && this.error === undefined) {
      this.announce = false;
      return this.give({ events: [], revision: this.startRevision - 1 });
    }
    for (;;) {
      if (this.error !== undefined) throw this.error;
      if (this.state === 'catching-up') {
        const batch = this.catchUp();
        if (batch !== undefined) return this.give(batch);
        continue;
      }
      if (this.queue.length > 0) return this.give(this.takeQueue());
      const wake = await new Promise<Wake>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = undefined;
      if (wake === 'progress' && this.error === undefined && this.state === 'live' && this.queue.length === 0) {
        return this.give({ events: [], revision: this.feed.revision });
      }
    }
  }

  close(): void {
    this.end(new StoreClosedError('the watch was closed'));
  }

  /** Ends the watch: the pending and every later next() reject with `error`. */
  end(error: Error): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.dropQueue();
    this.feed.leave(this);
    this.wake('ended');
  }

  /** From publish (live only): the events of `change` that this watcher wants. */
  offer(change: KeyChange): void {
    if (change.revision < this.nextRevision) return;
    const before = this.queue.length;
    this.queueBytes += eventsOf(change, this.target, this.prevEntry, this.queue);
    if (this.queue.length === before) return;
    if (this.queueBytes > this.feed.limits.maxQueueBytes) {
      // The consumer is not keeping up: stop holding events for it; the window serves it from nextRevision.
      this.dropQueue();
      this.state = 'catching-up';
      this.feed.goCatchingUp(this);
    }
    this.wake('events');
  }

  /** From the progress timer. */
  wakeForProgress(): void {
    this.wake('progress');
  }

  private wake(wake: Wake): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(wake);
  }

  private give(batch: WatchBatch): WatchBatch {
    this.lastGivenAt = Date.now();
    // A progress batch before a start in the future must not move the start back.
    this.nextRevision = Math.max(this.nextRevision, batch.revision + 1);
    return batch;
  }

  private takeQueue(): WatchBatch {
    const events = this.queue;
    this.dropQueue();
    // Live: every matching change up to the last one published is in `events`.
    return { events, revision: this.feed.revision };
  }

  private dropQueue(): void {
    this.queue = [];
    this.queueBytes = 0;
  }

  private becomeLive(): void {
    this.state = 'live';
    this.feed.goLive(this);
  }

  /**
   * Reads the window from nextRevision: whole revisions, up to the batch
   * limits. Returns undefined when it caught up with nothing to give (the
   * watcher is live then).
   */
  private catchUp(): WatchBatch | undefined {
    const window = this.feed.window;
    if (this.nextRevision < window.oldestRevision) {
      throw this.failWith(
        this.nextRevision === this.startRevision
          ? new WatchCompactedError(this.startRevision, window.oldestRevision)
          : new WatchTooSlowError(this.nextRevision),
      );
    }
    const { maxBatchEvents, maxBatchBytes } = this.feed.limits;
    const events: WatchEvent[] = [];
    let bytes = 0;
    let last = this.nextRevision - 1;
    let position = window.positionOf(this.nextRevision);
    while (position < window.size && events.length < maxBatchEvents && bytes < maxBatchBytes) {
      const revision = window.revisionAt(position);
      for (; position < window.size && window.revisionAt(position) === revision; position++) {
        bytes += eventsOf(window.at(position), this.target, this.prevEntry, events);
      }
      last = revision;
    }
    if (position >= window.size) {
      // Caught up with everything published: from here publish hands it events (same tick, so none is missed).
      this.becomeLive();
      if (events.length === 0) return undefined;
      return { events, revision: this.feed.revision };
    }
    return { events, revision: last };
  }

  private failWith(error: Error): Error {
    this.end(error);
    return error;
  }
}

/** Appends the events of `change` under `target` to `out`; returns their estimated bytes. */
function eventsOf(change: KeyChange, target: WatchTarget, prevEntry: boolean, out: WatchEvent[]): number {
  switch (change.type) {
    case 'set':
      if (!covers(target, change.key)) return 0;
      out.push({ type: 'put', key: change.key, revision: change.revision, entry: change.entry, prev: prevEntry ? change.prev : undefined });
      return eventBytes(change.key, change.entry) + (prevEntry ? eventBytes(change.key, change.prev) : 0);
    case 'delete':
      if (!covers(target, change.key)) return 0;
      out.push({ type: 'delete', key: change.key, revision: change.revision, entry: undefined, prev: prevEntry ? change.prev : undefined });
      return eventBytes(change.key, prevEntry ? change.prev : undefined);
    case 'clear': {
      // The two ranges overlap only if one prefix starts with the other.
      const key = 'key' in target ? target.key : undefined;
      const prefix = 'prefix' in target ? target.prefix : '';
      if (key !== undefined ? !key.startsWith(change.prefix) : !prefix.startsWith(change.prefix) && !change.prefix.startsWith(prefix)) {
        return 0;
      }
      const all = key === undefined && change.prefix.startsWith(prefix);
      let bytes = 0;
      for (const [removedKey, entry] of change.removed) {
        if (!all && !covers(target, removedKey)) continue;
        out.push({ type: 'delete', key: removedKey, revision: change.revision, entry: undefined, prev: prevEntry ? entry : undefined });
        bytes += eventBytes(removedKey, prevEntry ? entry : undefined);
      }
      return bytes;
    }
  }
}

function covers(target: WatchTarget, key: string): boolean {
  return 'key' in target ? key === target.key : key.startsWith(target.prefix);
}

function eventBytes(key: string, entry: StoredEntry | undefined): number {
  return 2 * key.length + 48 + (entry === undefined ? 0 : 2 * entry.valueJson.length);
}
