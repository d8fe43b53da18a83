/**
 * Compaction writes a checkpoint: the live keys, the leases and the recent
 * history of changes (write-checkpoint.ts), which then replaces every data
 * file before it; reads and writes go on meanwhile. It starts, at a batch
 * boundary, when either
 *   - dead bytes (overwritten, deleted or cleared records) outweigh live
 *     bytes by the configured ratio (disk use), or
 *   - the logs since the last checkpoint (which a restart replays record by
 *     record, and whose changes the index holds as JS objects) reach a
 *     fraction of the live bytes, or their changes a fraction of the live
 *     keys (start-up time and memory: replay costs per record, so small
 *     records over large live values are bounded by their number).
 *
 * Steps, and why a crash at any point recovers correctly:
 *   1. at a batch boundary, seal the active log N (fdatasync) and start log
 *      N+2; take an O(1) frozen view of the index and of the history window:
 *      the state as of the end of N. Crash: N and N+2 replay in order.
 *   2. write the view to snap-(N+1).snap.tmp block by block, yielding
 *      between them (see "Sharing the event loop"), a large table's keys on
 *      a worker thread (checkpoint-keys-worker.ts); fdatasync. Crash: *.tmp
 *      is ignored and deleted at open.
 *   3. rename to snap-(N+1).snap, fsync the directory; the index takes the
 *      checkpoint's key table as its base. Crash: open starts at the
 *      checkpoint (it holds everything up to N) and replays N+2; files
 *      numbered below N+1 are obsolete and deleted at open.
 *   4. delete the files numbered below N+1, fsync the directory. Crash: as 3.
 *
 * A worker thread writes the keys of a checkpoint of offThreadMinKeys keys or
 * more whose table holds at least as many keys as its layers changed; if the
 * worker fails for a reason of its own (not an I/O error), this and every
 * later checkpoint are written here instead (writeSnapshot).
 *
 * Sharing the event loop. A smaller checkpoint (and the history of any, and
 * the changed entries a worker is handed) is built on the thread that serves
 * writes and reads. Yielding a turn of the event loop between blocks is not
 * enough: a turn serves what is ready then, and a writer that waits for each
 * write before the next (in-process, fsync=interval or never) gets one write
 * per turn (docs/storage-format.md has the numbers at a million keys). So
 * the writer works in slices of about SLICE_MS (wall time, its own waits
 * for block writes included); after a slice during which the store took any
 * operation (a write or lease op queued, a read served), it pauses for as
 * long as the slice took (at most MAX_PAUSE_MS): the checkpoint gets at most
 * about half of a busy thread, and all of an idle one.
 */
import fs from 'node:fs';
import type { ResourceLimits } from 'node:worker_threads';
import type { Logger } from '../../logger';
import type { HistoryView } from '../feed/history-window';
import { NO_STORE_OBSERVER, type StoreObserver } from '../store-observer';
import { dataFilePath, logFileName, snapshotFileName, syncDirectory } from './data-dir-files';
import { type LogWriter, withBriefIoErrors } from './log-writer';
import { FILE_HEADER_SIZE } from './record-codec';
import type { IndexSnapshot, StoreIndex } from './store-index';
import { CheckpointWorkerFailed } from './checkpoint-keys-worker';
import { type WrittenCheckpoint, writeCheckpoint } from './write-checkpoint';

/** The checkpoint writer's slice of the event loop, and the longest it pauses after one (see above). */
export const SLICE_MS = 5;
export const MAX_PAUSE_MS = 20;

export interface CompactionOptions {
  /** Never compact for dead bytes while the data files total less than this (default 64 MiB). */
  minBytes?: number;
  /** Compact when dead bytes ≥ this × live bytes (default 1.0: disk stays within ~2× live, plus the history). */
  deadToLiveRatio?: number;
  /** Compact when the logs since the last checkpoint reach this × live bytes (default 0.125)... */
  logToLiveRatio?: number;
  /** ...or hold this × live keys changes (default 0.125)... */
  logToKeysRatio?: number;
  /** ...and at least this many bytes (default: 16 MiB, or about the bytes the history window takes packed if more, up to 64 MiB: each checkpoint copies the whole window). */
  logMinBytes?: number;
  /** After a failed attempt, wait this long before the next one (default 10000 ms). */
  retryAfterMs?: number;
  /**
   * Write a checkpoint's keys on a worker thread once the index holds this
   * many keys, counting those changed since the last checkpoint (default
   * 65,536; checkpoint-keys-worker.ts). Below it, starting a thread costs
   * more than the keys.
   */
  offThreadMinKeys?: number;
  /** Limits of that worker thread's memory (default: Node's). */
  workerResourceLimits?: ResourceLimits;
}

/** A data file before the active log. A checkpoint says how many of its bytes are history. */
export interface SealedFile {
  seq: number;
  name: string;
  size: number;
  checkpoint?: { historyBytes: number };
}

class CompactionStopped extends Error {}

/** The sealed files' bytes, how many are logs, and the newest snapshot if it is a checkpoint; `of` and `length`: the list they were counted from. */
interface SealedSummary {
  of: SealedFile[] | undefined;
  length: number;
  bytes: number;
  logs: number;
  checkpoint: SealedFile | undefined;
}

/** The least bytes of logs since the last checkpoint that start the next (unless compaction.logMinBytes says otherwise). */
export const DEFAULT_LOG_MIN_BYTES = 16 * 1024 * 1024;
/**
 * ...and the most the window's size raises that floor to: a window made far
 * larger (--watch-history-bytes) would otherwise let the logs a restart
 * replays, and the changes the index holds as objects meanwhile, grow with it.
 */
export const MAX_LOG_MIN_BYTES = 64 * 1024 * 1024;

export class Compactor {
  private readonly minBytes: number;
  private readonly ratio: number;
  private readonly logRatio: number;
  private readonly logKeysRatio: number;
  /** Undefined: DEFAULT_LOG_MIN_BYTES or the window's packed size, whichever is more (see checkpointProgress). */
  private readonly logMinBytes: number | undefined;
  /** index.changeCount when the newest checkpoint's view was taken (0 at open: replay counts only the logs after it). */
  private changesAtCheckpoint = 0;
  private readonly retryAfterMs: number;
  private readonly offThreadMinKeys: number;
  private readonly workerResourceLimits: ResourceLimits | undefined;
  /** Set once the worker thread failed for a reason of its own: checkpoints are then written on this thread. */
  private workerFailed = false;
  /** Whether the running compaction's keys are written by a worker thread (said in its log line). */
  private keysOnWorker = false;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** After a failed attempt, no retry before this time (ms), so a full disk is not hammered. */
  private retryAfter = 0;
  /** Called after each compaction attempt ends (set by the commit loop). */
  onFinished: () => void = () => undefined;
  /** Told how each compaction went (metrics). */
  observer: StoreObserver = NO_STORE_OBSERVER;
  /** Operations the store has taken so far (noteWork): what tells the checkpoint writer the store is busy. */
  private work = 0;
  /** When the checkpoint writer's current slice began, and the store's work count then. */
  private sliceStart = 0;
  private workAtSliceStart = 0;
  /** How long the running compaction's writer has paused for the store's work, ms. */
  private pausedMs = 0;
  private summary: SealedSummary = { of: undefined, length: 0, bytes: 0, logs: 0, checkpoint: undefined };

  constructor(
    private readonly dir: string,
    /** Data files before the active log, oldest first. */
    private sealed: SealedFile[],
    private readonly writer: LogWriter,
    private readonly index: StoreIndex,
    /** The history window (for the checkpoint to carry what it holds, and for the log trigger to weigh). */
    private readonly window: { view(): HistoryView; readonly byteSize: number },
    options: CompactionOptions,
    private readonly logger: Logger,
  ) {
    this.minBytes = options.minBytes ?? 64 * 1024 * 1024;
    this.ratio = options.deadToLiveRatio ?? 1.0;
    this.logRatio = options.logToLiveRatio ?? 0.125;
    this.logKeysRatio = options.logToKeysRatio ?? 0.125;
    this.logMinBytes = options.logMinBytes;
    this.retryAfterMs = options.retryAfterMs ?? 10_000;
    this.offThreadMinKeys = options.offThreadMinKeys ?? 65_536;
    this.workerResourceLimits = options.workerResourceLimits;
  }

  /** Bytes of all data files, the active log included. */
  get diskBytes(): number {
    return this.writer.activeSize + this.sealedSummary().bytes;
  }

  /**
   * What isDue reads of the sealed files, worked out again only when the list
   * changes (isDue runs before every batch, and the list changes only when a
   * compaction starts or ends).
   */
  private sealedSummary(): SealedSummary {
    const sealed = this.sealed;
    const summary = this.summary;
    if (summary.of === sealed && summary.length === sealed.length) return summary;
    let bytes = 0;
    let logs = 0;
    let checkpoint: SealedFile | undefined;
    for (const f of sealed) {
      bytes += f.size;
      if (f.name.endsWith('.snap')) checkpoint = f.checkpoint === undefined ? undefined : f;
      else logs++;
    }
    this.summary = { of: sealed, length: sealed.length, bytes, logs, checkpoint };
    return this.summary;
  }

  /** Bytes of history in the newest checkpoint (counted neither live nor dead). */
  get historyBytes(): number {
    return this.checkpoint?.checkpoint?.historyBytes ?? 0;
  }

  /** The newest snapshot, if it is a checkpoint (format 5; older snapshots are replayed record by record). */
  private get checkpoint(): SealedFile | undefined {
    return this.sealedSummary().checkpoint;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Whether compaction should start now; the commit loop asks between batches. */
  isDue(): boolean {
    if (this.running !== undefined || this.stopping || (this.retryAfter !== 0 && Date.now() < this.retryAfter)) return false;
    const disk = this.diskBytes;
    const live = this.index.liveBytes;
    const checkpoint = this.checkpoint;
    const history = checkpoint?.checkpoint?.historyBytes ?? 0;
    if (disk >= this.minBytes && disk - history - live >= this.ratio * live) return true;
    return this.checkpointProgress >= 1;
  }

  /**
   * How far the logs since the last checkpoint are toward starting the next
   * one: 1 or more once due (the dead-bytes rule aside). For monitoring and
   * benchmarks (a worst-case restart is one just below 1).
   */
  get checkpointProgress(): number {
    // Record bytes only: a log just started (its header alone) holds nothing to replay.
    const logCount = 1 + this.sealedSummary().logs;
    const logs = this.diskBytes - (this.checkpoint?.size ?? 0) - logCount * FILE_HEADER_SIZE;
    if (logs <= 0) return 0;
    const changes = this.index.changeCount - this.changesAtCheckpoint;
    const ofLive = logs / (this.logRatio * this.index.liveBytes);
    const ofKeys = changes / (this.logKeysRatio * this.index.size);
    // Each checkpoint copies the whole history window again: by default not before the logs hold about as many bytes
    // as the window packed (half its measure, which counts UTF-16), so a checkpoint copies no more history than the
    // logs grew since the last one.
    const min = this.logMinBytes ?? Math.min(MAX_LOG_MIN_BYTES, Math.max(DEFAULT_LOG_MIN_BYTES, this.window.byteSize / 2));
    return Math.min(logs / min, Math.max(ofLive, Number.isNaN(ofKeys) ? 0 : ofKeys));
  }

  /**
   * Step 1, run by the commit loop between batches (no write is in flight);
   * the rest runs in the background. Never throws: if the new log cannot be
   * created, the old one stays active, the error is logged and the next
   * attempt waits out the backoff (each attempt costs an fdatasync).
   */
  async start(): Promise<void> {
    const startedAt = performance.now();
    const snapSeq = this.writer.activeSeq + 1;
    let sealedLog: { seq: number; size: number };
    try {
      sealedLog = await this.writer.rotate(snapSeq + 1, this.index.revision);
    } catch (err) {
      // If the log itself failed, the writer has logged it and the store takes no more writes.
      if (this.writer.failure === undefined) {
        this.retryAfter = Date.now() + this.retryAfterMs;
        this.logger.error(
          { err, file: dataFilePath(this.dir, logFileName(snapSeq + 1)), retryAfterMs: this.retryAfterMs },
          `could not start a new log for compaction; writes go on in the current log, retrying in ${this.retryAfterMs} ms`,
        );
      }
      return;
    }
    this.sealed.push({ ...sealedLog, name: logFileName(sealedLog.seq) });
    // The index and the window as of the end of the sealed log, taken together.
    const snapshot = this.index.snapshot();
    const changes = this.index.changeCount;
    const history = this.window.view();
    const replaced = this.sealed.slice();
    this.logger.info({ snapshot: snapshotFileName(snapSeq), replacedFiles: replaced.length }, 'compaction started');
    // run() handles its own errors; the catch is a backstop, since nothing
    // else awaits this promise and a rejection would end the process.
    this.running = this.run(snapSeq, snapshot, changes, history, replaced, startedAt)
      .catch((err: unknown) => {
        this.retryAfter = Date.now() + this.retryAfterMs;
        this.logger.error({ err, retryAfterMs: this.retryAfterMs }, `compaction failed; retrying in ${this.retryAfterMs} ms`);
      })
      .finally(() => {
        history.release();
        this.running = undefined;
        if (!this.stopping) this.onFinished();
      });
  }

  /** After a heal (stop() first): compacts again, over the data files recovery found. */
  resume(sealed: SealedFile[]): void {
    this.sealed = sealed;
    this.stopping = false;
    this.retryAfter = 0;
  }

  /** Lets a running compaction stop at its next chunk and waits for it. Never rejects, so close() goes on to close the log. */
  async stop(): Promise<void> {
    this.stopping = true;
    try {
      await this.running;
    } catch {
      // Already logged by start()'s handler; close() must go on regardless.
    }
  }

  private async run(
    seq: number,
    snapshot: IndexSnapshot,
    changes: number,
    history: HistoryView,
    replaced: SealedFile[],
    startedAt: number,
  ): Promise<void> {
    const seconds = (): number => (performance.now() - startedAt) / 1000;
    const name = snapshotFileName(seq);
    const tmpPath = dataFilePath(this.dir, `${name}.tmp`);
    let written: WrittenCheckpoint;
    try {
      written = await this.writeWithHistoryIfRoom(tmpPath, snapshot, history);
      // A failed store (e.g. its directory lock lost: another process may own the files now) renames and deletes no data file.
      if (this.writer.failure !== undefined) throw new CompactionStopped();
      fs.renameSync(tmpPath, dataFilePath(this.dir, name));
      syncDirectory(this.dir);
    } catch (err) {
      this.index.release(snapshot);
      try {
        fs.rmSync(tmpPath, { force: true });
      } catch (rmErr) {
        // E.g. EROFS or EIO: the .tmp is ignored and deleted at the next open.
        this.logger.error({ err: rmErr, file: tmpPath }, `could not delete ${tmpPath}; it is deleted at next open`);
      }
      if (!(err instanceof CompactionStopped)) {
        // An I/O error (a full disk) without its stack, as the store's own failures are logged; anything else with it.
        withBriefIoErrors(this.logger).error(
          { err, file: tmpPath, retryAfterMs: this.retryAfterMs },
          `compaction failed writing ${name}; retrying in ${this.retryAfterMs} ms`,
        );
        this.retryAfter = Date.now() + this.retryAfterMs;
        this.observer.compacted({ ok: false, seconds: seconds(), reclaimedBytes: 0, pausedSeconds: this.pausedMs / 1000 });
      }
      return;
    }
    // The checkpoint is durable: from here the replaced files are never read again, and its keys serve reads.
    this.index.replaceBase(snapshot, written.table);
    this.changesAtCheckpoint = changes;
    const size = written.bytes;
    this.sealed = [
      { seq, name, size, checkpoint: { historyBytes: written.historyBytes } },
      ...this.sealed.filter((f) => !replaced.includes(f)),
    ];
    if (this.writer.failure !== undefined) return;
    let reclaimedBytes = 0;
    try {
      // Not rmSync: unlinking a large file frees its extents, which took 50 ms at a million keys. The store may
      // fail (lose its lock) while one is deleted: it is asked again before each, as the rename above does.
      for (const f of replaced) {
        if (this.writer.failure !== undefined) return;
        await fs.promises.rm(dataFilePath(this.dir, f.name), { force: true });
      }
      syncDirectory(this.dir);
      reclaimedBytes = Math.max(0, replaced.reduce((sum, f) => sum + f.size, 0) - size);
    } catch (err) {
      this.logger.error({ err }, 'could not delete files replaced by a snapshot; they are deleted at next open');
    }
    this.observer.compacted({ ok: true, seconds: seconds(), reclaimedBytes, pausedSeconds: this.pausedMs / 1000 });
    this.logger.info(
      {
        snapshot: name,
        bytes: size,
        diskBytes: this.diskBytes,
        seconds: seconds(),
        pausedSeconds: this.pausedMs / 1000,
        keysOnWorker: this.keysOnWorker,
      },
      'compaction finished',
    );
  }

  /**
   * Writes the checkpoint with the history window if the disk has room for
   * it, and without if not: a checkpoint is what frees the disk of dead
   * records, and the window, bounded by changes and memory, not by disk, can
   * be many times the live data (large values overwritten on a few keys). A
   * store that could not compact would fill its disk with its own garbage
   * and stay failed. The window in memory is kept either way; only a restart
   * loses what the checkpoint did not carry (watchers resuming from before
   * it get COMPACTED). Room means twice what the checkpoint would take, so
   * that the logs can go on growing meanwhile; and if the disk fills anyway,
   * the checkpoint is written again at once without the history.
   */
  private async writeWithHistoryIfRoom(tmpPath: string, snapshot: IndexSnapshot, history: HistoryView): Promise<WrittenCheckpoint> {
    if (history.size === 0) return this.writeSnapshot(tmpPath, snapshot, history);
    const keysBytes = this.index.liveBytes;
    // Packed (as the checkpoint carries it), a change takes about half of its in-memory estimate.
    const historyBytes = Math.ceil(history.bytes / 2);
    const free = freeBytes(this.dir);
    const without = (why: string, err?: unknown): Promise<WrittenCheckpoint> => {
      withBriefIoErrors(this.logger).warn(
        { err, file: tmpPath, freeBytes: free, keysBytes, historyBytes, historyFrom: history.oldestRevision, revision: snapshot.revision },
        `this checkpoint carries no watch history: ${why}; watchers that resume from before revision ${snapshot.revision + 1} after a restart get COMPACTED`,
      );
      return this.writeSnapshot(tmpPath, snapshot, undefined);
    };
    if (free !== undefined && free < 2 * (keysBytes + historyBytes)) {
      return without(`the disk has ${free} bytes free, and the history would take about ${historyBytes} more than the keys' ${keysBytes}`);
    }
    try {
      return await this.writeSnapshot(tmpPath, snapshot, history);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      fs.rmSync(tmpPath, { force: true });
      return without('the disk filled up as it was written with the history', err);
    }
  }

  private async writeSnapshot(tmpPath: string, snapshot: IndexSnapshot, history: HistoryView | undefined): Promise<WrittenCheckpoint> {
    this.pausedMs = 0;
    this.startSlice();
    let changed = 0;
    for (const layer of snapshot.layers) changed += layer.changes.size;
    // The worker's gain is the table it copies; changes it would only be handed, encoded, and held twice meanwhile.
    const offThread =
      !this.workerFailed && snapshot.base.count + changed >= this.offThreadMinKeys && snapshot.base.count >= changed
        ? { stopping: () => this.stopping, resourceLimits: this.workerResourceLimits }
        : undefined;
    this.keysOnWorker = offThread !== undefined;
    const betweenBlocks = async (): Promise<void> => {
      // Every few hundred entries or keys, and after each block: where close() gets a say, and writes and reads get their share.
      if (this.stopping) throw new CompactionStopped();
      await this.share();
      if (this.stopping) throw new CompactionStopped();
    };
    try {
      return await writeCheckpoint(tmpPath, snapshot, history, betweenBlocks, offThread);
    } catch (err) {
      if (!(err instanceof CheckpointWorkerFailed)) throw err;
      if (this.stopping) throw new CompactionStopped();
      // Not the disk's fault: retrying on a worker would fail again, and the logs would grow meanwhile.
      this.workerFailed = true;
      this.keysOnWorker = false;
      this.logger.error(
        { err },
        "the checkpoint's worker thread failed: this and every later checkpoint of this process are written on the serving thread",
      );
      fs.rmSync(tmpPath, { force: true });
      return writeCheckpoint(tmpPath, snapshot, history, betweenBlocks);
    }
  }

  /** Called for every operation the store takes (a write or lease op queued, a read served). */
  noteWork(): void {
    this.work++;
  }

  private startSlice(): void {
    this.sliceStart = performance.now();
    this.workAtSliceStart = this.work;
  }

  /** Ends the writer's slice once it has run SLICE_MS: pauses as long as it ran if the store served anything meanwhile, else a turn. */
  private async share(): Promise<void> {
    const ran = performance.now() - this.sliceStart;
    if (ran < SLICE_MS) return;
    if (this.work !== this.workAtSliceStart) {
      const pausedAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, Math.min(ran, MAX_PAUSE_MS)));
      this.pausedMs += performance.now() - pausedAt;
    } else {
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.startSlice();
  }
}

/** Bytes the data directory's file system has free for this process, or undefined if it cannot tell. */
function freeBytes(dir: string): number | undefined {
  try {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
