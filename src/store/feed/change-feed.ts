/**
 * The change feed: the publish step of the commit loop hands it each batch
 * of committed changes (whole revisions, in revision order); it keeps them in
 * the history window and hands each live watcher the events under its key
 * or prefix. Watchers that asked for history, or fell behind, read the
 * window instead (feed-watcher.ts). A watch's first batch comes at once
 * (where it starts, or the end of its catch-up), unless it starts further
 * on than the next revision; idle watchers get a progress batch (no
 * events, the current revision) every progressIntervalMs, so a client
 * always has a recent revision to resume from.
 *
 * The shape is etcd's watchable_store: synced watchers in an index by key
 * and prefix (watcher-registry.ts), unsynced ones catching up from history.
 */
import { type Change, type KeyChange, isKeyChange } from '../change';
import { StoreClosedError } from '../errors';
import type { Watch } from '../key-value-store';
import { FeedWatcher, type FeedView, type WatcherLimits } from './feed-watcher';
import { DEFAULT_HISTORY_LIMITS, HistoryWindow, type HistoryLimits } from './history-window';
import { type WatchTarget, WatcherRegistry } from './watcher-registry';

export interface ChangeFeedOptions {
  history?: Partial<HistoryLimits>;
  /** An idle watcher gets a progress batch about this often (default 5000 ms). */
  progressIntervalMs?: number;
  watcher?: Partial<WatcherLimits>;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;

const DEFAULT_WATCHER_LIMITS: WatcherLimits = {
  maxQueueBytes: 4 * 1024 * 1024,
  maxBatchEvents: 1000,
  maxBatchBytes: 1024 * 1024,
};

export interface FeedWatchRequest {
  target: WatchTarget;
  /** 0: from the next revision. */
  startRevision: number;
  prevEntry: boolean;
}

export class ChangeFeed implements FeedView {
  readonly window: HistoryWindow;
  readonly limits: WatcherLimits;
  private published: number;
  private readonly live = new WatcherRegistry<FeedWatcher>();
  private readonly open = new Set<FeedWatcher>();
  private readonly progressMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closedWith: Error | undefined;

  /** `revision`: the store revision the feed starts at; `window`: history rebuilt by recovery, if any. */
  constructor(revision: number, options: ChangeFeedOptions = {}, window?: HistoryWindow) {
    this.published = revision;
    this.window = window ?? new HistoryWindow(historyLimits(options), revision);
    this.limits = { ...DEFAULT_WATCHER_LIMITS, ...options.watcher };
    this.progressMs = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  }

  /** How often a watcher with nothing to receive gets a progress batch (ms). */
  get progressIntervalMs(): number {
    return this.progressMs;
  }

  /** The last revision published. */
  get revision(): number {
    return this.published;
  }

  get watcherCount(): number {
    return this.open.size;
  }

  /**
   * The publish step: `changes` are committed (durable and applied), whole
   * revisions in revision order. Lease grants and revocations concern no
   * key: watchers see the deletes they cause.
   */
  publish(committed: readonly Change[]): void {
    const changes: KeyChange[] = committed.filter(isKeyChange);
    if (changes.length === 0) return;
    this.window.push(changes);
    this.published = changes[changes.length - 1].revision;
    if (this.live.size === 0) return;
    for (const change of changes) {
      if (change.type === 'clear') {
        // Each watcher takes the whole clear once: it picks the removed keys it covers.
        const touched = new Set<FeedWatcher>();
        for (const [key] of change.removed) this.live.forEachMatch(key, (w) => touched.add(w));
        for (const w of touched) w.offer(change);
      } else {
        this.live.forEachMatch(change.key, (w) => w.offer(change));
      }
    }
  }

  watch(request: FeedWatchRequest): Watch {
    const start = request.startRevision === 0 ? this.published + 1 : request.startRevision;
    const watcher = new FeedWatcher(this, request.target, start, request.prevEntry, request.startRevision === 0);
    if (this.closedWith !== undefined) {
      watcher.end(this.closedWith);
      return watcher;
    }
    this.open.add(watcher);
    watcher.start();
    this.startProgressTimer();
    return watcher;
  }

  /** Ends every watch with `error` (default: the store is closed). */
  close(error: Error = new StoreClosedError('the store is closed')): void {
    this.closedWith ??= error;
    for (const watcher of [...this.open]) watcher.end(this.closedWith);
    this.stopProgressTimer();
  }

  goLive(watcher: FeedWatcher): void {
    this.live.add(watcher.target, watcher);
  }

  goCatchingUp(watcher: FeedWatcher): void {
    this.live.remove(watcher.target, watcher);
  }

  leave(watcher: FeedWatcher): void {
    if (watcher.isLive) this.live.remove(watcher.target, watcher);
    this.open.delete(watcher);
    if (this.open.size === 0) this.stopProgressTimer();
  }

  private startProgressTimer(): void {
    if (this.timer !== undefined) return;
    // Checked four times per interval, so an idle watcher hears within 1.25 intervals.
    this.timer = setInterval(() => this.sendProgress(), Math.max(1, Math.floor(this.progressMs / 4)));
    this.timer.unref();
  }

  private sendProgress(): void {
    const due = Date.now() - this.progressMs;
    for (const watcher of this.open) {
      if (watcher.lastGivenAt <= due && watcher.isLive && watcher.isWaiting) watcher.wakeForProgress();
    }
  }

  private stopProgressTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export function historyLimits(options: ChangeFeedOptions): HistoryLimits {
  return { ...DEFAULT_HISTORY_LIMITS, ...options.history };
}
