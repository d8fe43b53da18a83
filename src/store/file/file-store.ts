/**
 * The embedded file engine. AbstractKeyValueStore checks state and input
 * and encodes; here the commit loop (commit-loop.ts), the index and the
 * change feed do the work. Closing lets queued writes commit first, then
 * ends every watch.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Logger, silentLogger } from '../../logger';
import {
  AbstractKeyValueStore,
  type ValidClear,
  type ValidDelete,
  type ValidList,
  type ValidSet,
  type ValidWatch,
} from '../abstract-key-value-store';
import { StoreFailedError } from '../errors';
import { ChangeFeed, type ChangeFeedOptions, historyLimits } from '../feed/change-feed';
import type { ClearResult, DeleteResult, Entry, JsonValue, ListResult, SetResult, Watch } from '../key-value-store';
import { type CompactionOptions, Compactor } from './compact';
import { dataFilePath, syncDirectory } from './data-dir-files';
import { type DataDirLock, lockDataDir } from './data-dir-lock';
import { CommitLoop } from './commit-loop';
import { type ActiveLog, type FsyncMode, LogWriter, createLogFile, openLogFile } from './log-writer';
import { FileKind } from './record-codec';
import { recoverDataDir } from './recover-log';
import type { StoreIndex } from './store-index';

export interface FileStoreOptions {
  dataDir: string;
  /** When a write is acknowledged; see docs/storage-format.md for each mode's loss window. Default 'always'. */
  fsync?: FsyncMode;
  /** For fsync 'interval': the longest time between fdatasyncs. Default 1000. */
  fsyncIntervalMs?: number;
  /** Default 4096 (UTF-8 bytes). */
  maxKeyBytes?: number;
  /** Default 1048576 (JSON-encoded bytes). */
  maxValueBytes?: number;
  logger?: Logger;
  compaction?: CompactionOptions;
  /** The change feed: its history window and watchers' progress interval. */
  feed?: ChangeFeedOptions;
  /** Aborts recovery (openFileStore rejects with the signal's reason and releases the directory). */
  signal?: AbortSignal;
}

export class FileStore extends AbstractKeyValueStore {
  /** Use openFileStore(). */
  constructor(
    readonly dataDir: string,
    private readonly index: StoreIndex,
    private readonly writer: LogWriter,
    private readonly compactor: Compactor,
    private readonly commits: CommitLoop,
    private readonly feed: ChangeFeed,
    private readonly lock: DataDirLock,
    maxKeyBytes: number,
    maxValueBytes: number,
    private readonly logger: Logger,
  ) {
    super({ maxKeyBytes, maxValueBytes });
  }

  get revision(): number {
    return this.index.revision;
  }

  /**
   * Bytes of all data files and of the live records in them (for monitoring
   * and benchmarks); `compacting` is true while a compaction runs or is due.
   */
  get diskUsage(): { diskBytes: number; liveBytes: number; compacting: boolean } {
    return {
      diskBytes: this.compactor.diskBytes,
      liveBytes: this.index.liveBytes,
      compacting: this.compactor.isRunning || this.compactor.isDue(),
    };
  }

  /** Why the store takes no more writes (StoreFailedError), or undefined while it does. */
  get failure(): StoreFailedError | undefined {
    return this.writer.failure;
  }

  /**
   * Stops the store taking writes, for good: every later write rejects with
   * StoreFailedError (code FAILED) carrying `error` as its cause, and no
   * compaction renames or deletes a file any more; reads go on. For when the
   * owner learns the data directory is no longer safely its own (e.g. the
   * directory lock was lost). The first failure wins; later calls do nothing.
   */
  fail(error: Error): void {
    this.writer.fail(error instanceof StoreFailedError ? error : new StoreFailedError(this.dataDir, error));
  }

  protected _get(key: string): Promise<Entry | undefined> {
    const e = this.index.get(key);
    if (e === undefined) return Promise.resolve(undefined);
    return Promise.resolve({
      key,
      value: JSON.parse(e.valueJson) as JsonValue,
      createRevision: e.createRevision,
      modRevision: e.modRevision,
      version: e.version,
    });
  }

  protected _set(op: ValidSet): Promise<SetResult> {
    return new Promise<SetResult>((resolve, reject) => {
      this.commits.submit({
        kind: 'set',
        key: op.key,
        keyBytes: op.keyBytes,
        valueJson: op.valueJson,
        valueBytes: op.valueBytes,
        expected: op.expectedRevision,
        resolve,
        reject,
      });
    });
  }

  protected _delete(op: ValidDelete): Promise<DeleteResult> {
    return new Promise<DeleteResult>((resolve, reject) => {
      this.commits.submit({ kind: 'delete', key: op.key, keyBytes: op.keyBytes, expected: op.expectedRevision, resolve, reject });
    });
  }

  protected _listKeys(op: ValidList): Promise<ListResult> {
    return Promise.resolve(this.index.list(op.prefix, op.startAfter, op.limit));
  }

  protected _clear(op: ValidClear): Promise<ClearResult> {
    return new Promise<ClearResult>((resolve, reject) => {
      this.commits.submit({ kind: 'clear', prefix: op.prefix, prefixBytes: op.prefixBytes, resolve, reject });
    });
  }

  protected _watch(op: ValidWatch): Watch {
    return this.feed.watch(op);
  }

  /** The oldest revision a watch can start at, and how many watches are open (for monitoring and tests). */
  get feedStatus(): { oldestRevision: number; watchers: number; historyChanges: number } {
    return { oldestRevision: this.feed.window.oldestRevision, watchers: this.feed.watcherCount, historyChanges: this.feed.window.size };
  }

  protected async _close(): Promise<void> {
    try {
      await this.commits.drain();
      this.feed.close();
      await this.compactor.stop();
      await this.writer.close();
    } finally {
      await this.lock.release();
      this.logger.debug({ dataDir: this.dataDir }, 'store closed');
    }
  }
}

/** Locks the data directory, recovers its state and opens it for writing. */
export async function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  const dir = options.dataDir;
  const logger = options.logger ?? silentLogger;
  fs.mkdirSync(dir, { recursive: true });
  // A lost lock (LOCK removed or taken by another process) means another
  // writer may be appending to our log: stop writing at once.
  let store: FileStore | undefined;
  const lock = await lockDataDir(dir, logger, {
    onCompromised: (err) => store?.fail(new StoreFailedError(path.join(dir, 'LOCK'), err)),
  });
  try {
    const started = performance.now();
    const recovered = await recoverDataDir(dir, logger, { history: historyLimits(options.feed ?? {}), signal: options.signal });
    // Before a new log is created: a removed leftover log may have its name.
    if (recovered.obsolete.length > 0) {
      for (const name of recovered.obsolete) fs.rmSync(dataFilePath(dir, name), { force: true });
      syncDirectory(dir);
    }
    const last = recovered.files.at(-1);
    let active: ActiveLog;
    const sealed = recovered.files.map((f) => ({ seq: f.seq, name: f.name, size: f.size }));
    if (last !== undefined && last.kind === FileKind.Log) {
      active = openLogFile(dir, last.seq, last.size);
      sealed.pop();
    } else {
      active = createLogFile(dir, (last?.seq ?? 0) + 1, recovered.revision);
    }
    const index = recovered.index;
    const mode = options.fsync ?? 'always';
    const writer = new LogWriter(dir, active, mode, options.fsyncIntervalMs ?? 1000, logger);
    const compactor = new Compactor(dir, sealed, writer, index, options.compaction ?? {}, logger);
    const feed = new ChangeFeed(index.revision, options.feed, recovered.window);
    const commits = new CommitLoop(index, writer, feed, compactor);
    logger.info(
      {
        dataDir: dir,
        keys: index.size,
        revision: index.revision,
        files: recovered.files.length,
        historyFrom: recovered.window.oldestRevision,
        ms: Math.round(performance.now() - started),
      },
      'store opened',
    );
    store = new FileStore(
      dir,
      index,
      writer,
      compactor,
      commits,
      feed,
      lock,
      options.maxKeyBytes ?? 4096,
      options.maxValueBytes ?? 1048576,
      logger,
    );
    if (lock.compromised !== undefined) store.fail(new StoreFailedError(path.join(dir, 'LOCK'), lock.compromised));
    return store;
  } catch (err) {
    // The open error is what the caller must see; a failed release is only logged.
    await lock.release().catch((releaseError: unknown) => logger.warn({ err: releaseError }, 'could not release the data directory'));
    throw err;
  }
}
