/**
 * The embedded file engine. AbstractKeyValueStore checks state and input
 * and encodes; here the commit loop (commit-loop.ts), the index and the
 * change feed do the work. Closing lets queued writes commit first, then
 * ends every watch.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { type Logger, silentLogger } from '../../logger';
import {
  AbstractKeyValueStore,
  DEFAULT_MAX_TXN_OPS,
  type StoreLimits,
  type ValidTxn,
  type ValidUpdate,
  type ValidClear,
  type ValidDelete,
  type ValidList,
  type ValidSet,
  type ValidWatch,
} from '../abstract-key-value-store';
import type { StoredEntry } from '../change';
import { LeaseNotFoundError, StoreFailedError } from '../errors';
import { compareKeys } from '../key-order';
import { historyPacker } from './packed-history';
import { ChangeFeed, type ChangeFeedOptions, historyLimits } from '../feed/change-feed';
import type {
  ClearResult,
  DeleteResult,
  Entry,
  Lease,
  LeaseInfo,
  LeaseStatus,
  ListLeasesResult,
  ListEntriesResult,
  ListResult,
  SetResult,
  StoreSnapshot,
  StoreStats,
  TxnResult,
  Watch,
} from '../key-value-store';
import { NO_STORE_OBSERVER, type StoreObserver } from '../store-observer';
import { type CompactionOptions, Compactor } from './compact';
import { makeDataDir } from './data-dir-files';
import { type DataDirLock, lockDataDir } from './data-dir-lock';
import { BusyPoll } from './busy-poll';
import { CommitLoop } from './commit-loop';
import { type WriteOp, toEntry } from './decide';
import { type HealOptions, Healer } from './heal';
import { LeaseClock } from './lease-clock';
import { type FsyncMode, LogWriter, openActiveLog, withBriefIoErrors } from './log-writer';
import { closeHistoryId, openHistoryId } from './history-id';
import { recoverDataDir } from './recover-log';
import type { StoreIndex } from './store-index';

export interface FileStoreOptions {
  dataDir: string;
  /** When a write is acknowledged; see docs/storage-format.md for each mode's loss window. Default 'always'. */
  fsync?: FsyncMode;
  /** For fsync 'interval': the longest time between fdatasyncs. Default 1000. */
  fsyncIntervalMs?: number;
  /** For fsync 'always': how long the event loop polls instead of sleeping through a batch's fdatasync and after its callers are answered (busy-poll.ts), in µs. Default 0 (off). */
  busyPollUs?: number;
  /** Default 4096 (UTF-8 bytes). */
  maxKeyBytes?: number;
  /** Default 1048576 (JSON-encoded bytes). */
  maxValueBytes?: number;
  /** The most compares, and ops per branch, of a transaction. Default 128. */
  maxTxnOps?: number;
  logger?: Logger;
  compaction?: CompactionOptions;
  /** The change feed: its history window and watchers' progress interval. */
  feed?: ChangeFeedOptions;
  /** Aborts waiting for the lock, or recovery: openFileStore rejects with the signal's reason, the directory released. */
  signal?: AbortSignal;
  /** The process to signal to stop this one, if not this one (a supervisor's): said to another process the lock refuses. */
  stopPid?: number;
  /** The backoff of in-process recovery after an I/O failure (heal.ts). */
  heal?: HealOptions;
  /** Told of fsyncs, batches and compactions as they happen (the server's metrics). */
  observer?: StoreObserver;
}

/** The working parts of an open file store, built by openFileStore. */
interface FileStoreParts {
  dataDir: string;
  index: StoreIndex;
  writer: LogWriter;
  compactor: Compactor;
  commits: CommitLoop;
  feed: ChangeFeed;
  leases: LeaseClock;
  lock: DataDirLock;
  healer: Healer;
  logger: Logger;
  mode: FsyncMode;
  historyId: string;
}

export class FileStore extends AbstractKeyValueStore {
  readonly dataDir: string;
  private readonly index: StoreIndex;
  private readonly writer: LogWriter;
  private readonly compactor: Compactor;
  private readonly commits: CommitLoop;
  private readonly feed: ChangeFeed;
  private readonly leases: LeaseClock;
  private readonly lock: DataDirLock;
  private readonly healer: Healer;
  private readonly logger: Logger;
  private readonly mode: FsyncMode;
  /** The id of the store's history (history-id.ts). */
  readonly historyId: string;
  /** An I/O failure happened in this run: a close does not vouch for the history (history-id.ts). */
  private historyTainted = false;

  /** Use openFileStore(). */
  constructor(parts: FileStoreParts, limits: StoreLimits) {
    super(limits);
    ({
      dataDir: this.dataDir,
      index: this.index,
      writer: this.writer,
      compactor: this.compactor,
      commits: this.commits,
      feed: this.feed,
      leases: this.leases,
      lock: this.lock,
      healer: this.healer,
      logger: this.logger,
      mode: this.mode,
      historyId: this.historyId,
    } = parts);
  }

  get revision(): number {
    return this.index.revision;
  }

  get watchProgressMs(): number {
    return this.feed.progressIntervalMs;
  }

  /**
   * Bytes of all data files, of the live records in them and of the history
   * the newest checkpoint carries (for monitoring and benchmarks);
   * `compacting` is true while a compaction runs or is due;
   * `checkpointProgress` says how far the logs since the last checkpoint
   * are toward starting the next one (1 = due).
   */
  get diskUsage(): { diskBytes: number; liveBytes: number; historyBytes: number; compacting: boolean; checkpointProgress: number } {
    return {
      diskBytes: this.compactor.diskBytes,
      liveBytes: this.index.liveBytes,
      historyBytes: this.compactor.historyBytes,
      compacting: this.compactor.isRunning || this.compactor.isDue(),
      checkpointProgress: this.compactor.checkpointProgress,
    };
  }

  /** Keys in the checkpoint's table (off the JS heap) and keys changed since (on it): for monitoring and benchmarks. */
  get memoryLayout(): { tableKeys: number; changedKeys: number; layers: number } {
    return this.index.layout;
  }

  /** The oldest revision a watch can start at, and how many watches are open (for monitoring and tests). */
  get feedStatus(): { oldestRevision: number; watchers: number; historyChanges: number } {
    return { oldestRevision: this.feed.window.oldestRevision, watchers: this.feed.watcherCount, historyChanges: this.feed.window.size };
  }

  /**
   * Why the store takes no writes now (StoreFailedError), or undefined while
   * it does. After an I/O failure it heals by itself (heal.ts): this turns
   * undefined again once writes resume.
   */
  get failure(): StoreFailedError | undefined {
    return this.writer.failure;
  }

  /**
   * Stops the store taking writes, for good (no heal): every later write
   * rejects with StoreFailedError (code FAILED) carrying `error` as its
   * cause, and no compaction renames or deletes a file any more; reads go on.
   * For when the owner learns the data directory is no longer safely its own
   * (e.g. the directory lock was lost). The first such call wins; later ones
   * do nothing.
   */
  fail(error: Error): void {
    this.writer.fail(error instanceof StoreFailedError ? error : new StoreFailedError(this.dataDir, error));
  }

  /** An I/O failure in this run: its clean close leaves the history id file saying 'unsynced'. */
  taintHistory(): void {
    this.historyTainted = true;
  }

  protected _get(key: string): Promise<Entry | undefined> {
    // Counted, so that a checkpoint being written knows the store is busy (compact.ts).
    this.compactor.noteWork();
    const e = this.index.get(key);
    return Promise.resolve(e === undefined ? undefined : toEntry(key, e));
  }

  protected _set(op: ValidSet): Promise<SetResult> {
    // Field by field rather than spread: the busiest write builds one object, not three.
    return new Promise<SetResult>((resolve, reject) =>
      this.commits.submit({
        kind: 'set',
        key: op.key,
        keyBytes: op.keyBytes,
        valueJson: op.valueJson,
        valueBytes: op.valueBytes,
        expectedRevision: op.expectedRevision,
        lease: op.lease,
        ttlMs: op.ttlMs,
        resolve,
        reject,
      }),
    );
  }

  protected _delete(op: ValidDelete): Promise<DeleteResult> {
    return this.submit<DeleteResult>((settle) => ({ kind: 'delete', ...op, ...settle }));
  }

  protected _clear(op: ValidClear): Promise<ClearResult> {
    return this.submit<ClearResult>((settle) => ({ kind: 'clear', ...op, ...settle }));
  }

  protected _update(op: ValidUpdate): Promise<Entry> {
    return this.submit<Entry>((settle) => ({ kind: 'update', ...op, ...settle }));
  }

  protected _txn(txn: ValidTxn): Promise<TxnResult> {
    return this.submit<TxnResult>((settle) => ({ kind: 'txn', txn, ...settle }));
  }

  protected _grantLease(ttlMs: number): Promise<Lease> {
    return this.submit<Lease>((settle) => ({ kind: 'grant', ttlMs, ...settle }));
  }

  protected _revokeLease(id: number): Promise<ClearResult> {
    return this.submit<ClearResult>((settle) => ({ kind: 'revoke', id, ...settle }));
  }

  /**
   * Not logged: a keep-alive only moves the deadline (which a restart resets
   * to the full time to live anyway). A lease past its deadline is gone, but
   * its keys only once its expiry has committed: the answer waits for that,
   * so that a client told the lease is gone finds its keys gone too.
   */
  protected async _keepAliveLease(id: number, waited = false): Promise<Lease> {
    this.compactor.noteWork();
    const lease = this.index.lease(id);
    if (lease !== undefined && this.leases.refresh(id, lease.ttlMs)) return { id, ttlMs: lease.ttlMs };
    if (lease === undefined || !this.leases.isExpiring(id)) throw new LeaseNotFoundError(id);
    // Its expiry is queued in the commit loop (or failed with the store: then the store's failure is the answer).
    if (this.writer.failure !== undefined) throw this.writer.failure;
    if (waited) throw new LeaseNotFoundError(id);
    await this.leases.whenSettled(id);
    return this._keepAliveLease(id, true);
  }

  protected _leaseInfo(id: number, keys: boolean): Promise<LeaseInfo> {
    this.compactor.noteWork();
    const lease = this.index.lease(id);
    const remainingMs = this.leases.remaining(id);
    if (lease === undefined || remainingMs === undefined) return Promise.reject(new LeaseNotFoundError(id));
    return Promise.resolve({ id, ttlMs: lease.ttlMs, remainingMs, keys: keys ? [...lease.keys].sort(compareKeys) : undefined });
  }

  protected _listLeases(after: number, limit: number): Promise<ListLeasesResult> {
    this.compactor.noteWork();
    const { ids, more } = this.index.leaseIdsAfter(after, limit);
    const leases: LeaseStatus[] = [];
    for (const id of ids) {
      const lease = this.index.lease(id) as NonNullable<ReturnType<StoreIndex['lease']>>;
      // One past its time but not yet expired by the clock's next tick is gone already, as leaseInfo says.
      const remainingMs = this.leases.remaining(id);
      if (remainingMs === undefined) continue;
      leases.push({ id, ttlMs: lease.ttlMs, private: lease.private, remainingMs, keyCount: lease.keys.size });
    }
    return Promise.resolve({ leases, more });
  }

  protected _listKeys(op: ValidList): Promise<ListResult> {
    this.compactor.noteWork();
    const { keys, more } = this.index.list(op.prefix, op.startAfter, op.limit);
    return Promise.resolve({ keys, more, revision: this.index.revision });
  }

  /** Keys and entries are read in one go, so the page is the state at one revision. */
  protected _list(op: ValidList): Promise<ListEntriesResult> {
    this.compactor.noteWork();
    const { keys, more } = this.index.list(op.prefix, op.startAfter, op.limit);
    const entries = keys.map((key) => toEntry(key, this.index.get(key) as StoredEntry));
    return Promise.resolve({ entries, more, revision: this.index.revision });
  }

  protected _watch(op: ValidWatch): Watch {
    return this.feed.watch(op);
  }

  /** The index's frozen view (O(1); writes go on, saving each key's old entry for it until released). */
  protected _snapshot(): Promise<StoreSnapshot> {
    const view = this.index.snapshot();
    return Promise.resolve({
      revision: view.revision,
      keyCount: view.size,
      leases: view.leases,
      entries: () => view.entries(),
      release: () => this.index.release(view),
    });
  }

  stats(): StoreStats {
    return {
      revision: this.index.revision,
      watchers: this.feed.watcherCount,
      keys: this.index.size,
      leases: this.index.leaseCount,
      liveBytes: this.index.liveBytes,
      diskBytes: this.compactor.diskBytes,
    };
  }

  protected async _close(): Promise<void> {
    try {
      await this.healer.stop();
      await this.commits.drain();
      this.leases.close();
      this.feed.close();
      await this.compactor.stop();
      await this.writer.close();
      // Only a close whose last fdatasync covered every change published makes an unsynced run's history safe.
      if (this.writer.failure === undefined && !this.historyTainted) {
        try {
          closeHistoryId(this.dataDir, this.historyId, this.mode);
        } catch (err) {
          // Left saying 'unsynced': the next open on this boot keeps the id, one after a machine restart takes a new one.
          this.logger.warn({ err, dataDir: this.dataDir }, 'could not mark the history id clean at close');
        }
      }
    } finally {
      await this.lock.release();
      this.logger.debug({ dataDir: this.dataDir }, 'store closed');
    }
  }

  /** Queues a write for the commit loop; its promise settles with the op's outcome. */
  private submit<T>(make: (settle: { resolve: (value: T) => void; reject: (reason: unknown) => void }) => WriteOp): Promise<T> {
    return new Promise<T>((resolve, reject) => this.commits.submit(make({ resolve, reject })));
  }
}

/** Locks the data directory, recovers its state and opens it for writing. */
export async function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  const dir = options.dataDir;
  const logger = options.logger ?? silentLogger;
  makeDataDir(dir);
  // A lost lock (LOCK removed or taken by another process) means another
  // writer may be appending to our log: stop writing at once.
  let store: FileStore | undefined;
  const lock = await lockDataDir(dir, logger, {
    signal: options.signal,
    stopPid: options.stopPid,
    onCompromised: (err) => store?.fail(new StoreFailedError(path.join(dir, 'LOCK'), err)),
  });
  try {
    const started = performance.now();
    const recovered = await recoverDataDir(dir, logger, {
      history: historyLimits(options.feed ?? {}),
      ...historyPacker(),
      signal: options.signal,
    });
    options.signal?.throwIfAborted(); // recovery's last step (building the key order) does not yield
    const mode = options.fsync ?? 'always';
    // After openActiveLog, which fdatasyncs what replay read: only then may an unsynced run's history count as kept.
    const { active, sealed } = openActiveLog(dir, recovered);
    const historyId = openHistoryId(dir, mode, logger);
    const index = recovered.index;
    const writer = new LogWriter(dir, active, mode, options.fsyncIntervalMs ?? 1000, logger);
    const feed = new ChangeFeed(index.revision, options.feed, recovered.window);
    const compactor = new Compactor(dir, sealed, writer, index, feed.window, options.compaction ?? {}, logger);
    const maxValueBytes = options.maxValueBytes ?? 1048576;
    // Expired leases are revoked through the commit loop, like any write.
    // Settles once the expiry is committed or failed: the clock sends its next chunk then.
    const leases = new LeaseClock(
      (ids) =>
        new Promise<void>((settled) =>
          commits.submit({
            kind: 'expire',
            ids,
            resolve: () => settled(),
            reject: (err) => {
              // A store that takes no writes (a full disk) has said so once, and expiry is tried again: no stack at every try.
              if (err instanceof StoreFailedError)
                logger.debug({ leases: ids, reason: err.message }, 'lease expiry waits for the store to take writes');
              else withBriefIoErrors(logger).warn({ err, leases: ids }, 'lease expiry failed');
              leases.expiryFailed(ids);
              settled();
            },
          }),
        ),
    );
    // A restart gives every lease its full time to live again (docs/storage-format.md).
    for (const lease of index.allLeases()) leases.arm(lease.id, lease.ttlMs);
    const commits: CommitLoop = new CommitLoop(
      index,
      writer,
      feed,
      compactor,
      leases,
      {
        maxValueBytes,
        newLeaseId: () => newLeaseId(index),
      },
      mode === 'always' && (options.busyPollUs ?? 0) > 0 ? new BusyPoll((options.busyPollUs ?? 0) / 1000) : undefined,
    );
    const healer = new Healer({ dir, logger, writer, compactor, index, lock }, options.heal, () => {
      // Expiries rejected while the store was failed left their leases stuck: a heal, like a restart, gives them their full time again.
      for (const lease of index.allLeases()) if (leases.remaining(lease.id) === 0) leases.arm(lease.id, lease.ttlMs);
    });
    writer.onIoFailure = () => {
      // In the modes that publish before an fdatasync, changes watchers were sent may not reach the disk now.
      store?.taintHistory();
      healer.start();
    };
    const observer = options.observer ?? NO_STORE_OBSERVER;
    writer.observer = observer;
    commits.observer = observer;
    compactor.observer = observer;
    logger.info(
      {
        dataDir: dir,
        keys: index.size,
        checkpointKeys: index.layout.tableKeys,
        leases: index.leaseCount,
        revision: index.revision,
        files: recovered.files.length,
        historyFrom: recovered.window.oldestRevision,
        historyId,
        ms: Math.round(performance.now() - started),
      },
      'store opened',
    );
    store = new FileStore(
      { dataDir: dir, index, writer, compactor, commits, feed, leases, lock, healer, logger, mode, historyId },
      { maxKeyBytes: options.maxKeyBytes ?? 4096, maxValueBytes, maxTxnOps: options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS },
    );
    if (lock.compromised !== undefined) store.fail(new StoreFailedError(path.join(dir, 'LOCK'), lock.compromised));
    // A compaction may be due already (logs since the last checkpoint, a snapshot of an older format): it need not wait for a write.
    commits.wake();
    return store;
  } catch (err) {
    // The open error is what the caller must see; a failed release is only logged.
    await lock.release().catch((releaseError: unknown) => logger.warn({ err: releaseError }, 'could not release the data directory'));
    throw err;
  }
}

/** A random lease id below 2^48 (exact in every client language) that no live lease has. */
function newLeaseId(index: StoreIndex): number {
  for (;;) {
    const id = randomInt(1, 2 ** 48);
    if (index.lease(id) === undefined) return id;
  }
}
