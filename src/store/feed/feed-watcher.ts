/**
 * One watch on the change feed. A watcher is either live (in the registry:
 * publish hands it the matching events of each new revision) or catching up
 * (not in the registry: next() reads the history window from its cursor).
 * It starts catching up when it asks for history, and falls back to it when
 * its consumer stops taking events and its queue passes the bound: the
 * queue is dropped and the window serves it again from the first revision
 * it has not been given. So a slow consumer costs the writer nothing and
 * holds at most its queue bound; it is ended (WatchTooSlowError) only once
 * the window no longer holds what it still needs (so no start_revision can
 * resume it: its client reads the state again).
 *
 * A watch's first batch comes at once: one from now, or from the next
 * revision, says the revision before its start, the last one published;
 * one from a revision further on says the last one published too (what a
 * client resuming on a store that went back sees at once); one that asked
 * for history gets the end of its catch-up, with the events it found or
 * none, current to the revision published. (A watch not from now says
 * nothing first if its first events are there already: they say more.) So
 * a client has where the watch stands, to resume from, as soon as the
 * server has it.
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
  /**
   * A watch that starts after the last revision published first gives no
   * events, current to that revision (at most startRevision - 1): from now
   * always, from a revision asked for only if no events are queued by its
   * first next() (they say more).
   */
  private announce: 'always' | 'if-nothing-queued' | undefined;

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
    private readonly fromNow = false,
  ) {
    this.nextRevision = startRevision;
  }

  get isLive(): boolean {
    return this.state === 'live';
  }

  get isWaiting(): boolean {
    return this.waiter !== undefined;
  }

  /**
   * Called by the feed right after construction: live at once unless it
   * asked for history. One that starts after the last revision published
   * (from now; from the next revision, as a client resuming after the last
   * one it was sent, or after the revision it listed at; or further on)
   * first says where the store is, so that its client hears at once where
   * it stands.
   */
  start(): void {
    if (this.nextRevision > this.feed.revision) {
      this.announce = this.fromNow ? 'always' : 'if-nothing-queued';
      this.becomeLive();
    }
  }

  async next(): Promise<WatchBatch> {
    const announce = this.announce;
    this.announce = undefined;
    if (announce !== undefined && this.error === undefined && (announce === 'always' || this.queue.length === 0)) {
      // Current to the revision before its start, or to the last one published if that is further back (a start in the future).
      return this.give({ events: [], revision: Math.min(this.startRevision - 1, this.feed.revision) });
    }
    for (;;) {
      if (this.error !== undefined) throw this.error;
      if (this.state === 'catching-up') return this.give(this.catchUp());
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
   * limits. The batch that reaches the end of the window is current to the
   * last revision published, with or without events (the watcher is live
   * then): a catch-up that found nothing still says where it got to, at once.
   */
  private catchUp(): WatchBatch {
    const window = this.feed.window;
    if (this.nextRevision < window.oldestRevision) {
      throw this.failWith(
        this.nextRevision === this.startRevision
          ? new WatchCompactedError(this.startRevision, window.oldestRevision)
          : new WatchTooSlowError(this.nextRevision, window.oldestRevision),
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
