/**
 * Heals the store after an I/O failure of its log (ENOSPC, EIO, EPERM...)
 * without a restart, doing what a restart does. On a backoff, each attempt:
 *
 *   1. closes what the failure left open: a running compaction, the log;
 *   2. checks that the disk takes writes: writes and fdatasyncs a probe file
 *      as large as the failed append (at least 4 KiB), then deletes it;
 *   3. cuts the failed batch off the log (everything past the writer's
 *      committed size: it was never applied, published nor acknowledged);
 *   4. recovers the data directory as an open does (recover-log.ts);
 *   5. checks that what recovery read is exactly the in-memory index, which
 *      readers and watchers were given: a disk that disagrees is not papered
 *      over, the store then stays failed until a restart;
 *   6. reopens the newest log; the writer and compaction resume.
 *
 * The directory lock stays held throughout. A store whose lock was lost, or
 * that its owner failed on purpose (LogWriter.fail), never heals: another
 * process may own the files. The change feed is left alone: nothing of the
 * failed batch was published, so watchers go on with the next revision,
 * exactly once.
 *
 * A failed attempt logs one line and doubles the wait, up to maxDelayMs. A
 * failure soon after a heal goes on from the step the last one reached, so a
 * disk that takes the probe but not the writes cannot make the store flap
 * faster than the backoff.
 */
import fs from 'node:fs';
import type { Logger } from '../../logger';
import { CorruptDataError, StoreFailedError } from '../errors';
import type { Compactor } from './compact';
import { dataFilePath, logFileName } from './data-dir-files';
import type { DataDirLock } from './data-dir-lock';
import { renewHistoryId } from './history-id';
import { type LogWriter, openActiveLog, withBriefIoErrors } from './log-writer';
import { recoverDataDir } from './recover-log';
import type { StoreIndex } from './store-index';

export interface HealOptions {
  /** The wait before the first attempt (default 100 ms); doubled after each failed one. */
  firstDelayMs?: number;
  /** The longest wait between attempts (default 10 000 ms). */
  maxDelayMs?: number;
}

/** The parts of an open store a heal closes, checks and reopens. */
export interface HealedParts {
  dir: string;
  logger: Logger;
  writer: LogWriter;
  compactor: Compactor;
  index: StoreIndex;
  lock: DataDirLock;
}

/** A .tmp name: recovery deletes it at the next open if a crash leaves it behind. */
const PROBE_FILE = 'heal-probe.tmp';
const MIN_PROBE_BYTES = 4096;
const PROBE_CHUNK_BYTES = 1024 * 1024;
/** Entries compared between two yields to the event loop. */
const COMPARE_YIELD_EVERY = 65_536;

/** What recovery read is not what the store served: healing would change history. */
class DiskDisagrees extends Error {}

export class Healer {
  private readonly firstDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private attempting: Promise<void> | undefined;
  /** Failed attempts in a row: the backoff step. */
  private step = 0;
  private attempts = 0;
  private failedAt = 0;
  private healedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly parts: HealedParts,
    options: HealOptions = {},
    /** Runs right after writes resume: state the owner derives from the store's, to bring back in line. */
    private readonly onHealed: () => void = () => undefined,
  ) {
    this.firstDelayMs = options.firstDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
  }

  /** The log writer failed on I/O: attempt to heal until an attempt succeeds. */
  start(): void {
    if (this.timer !== undefined || this.attempting !== undefined || this.stopping.signal.aborted) return;
    const now = Date.now();
    this.step = now - this.healedAt > this.maxDelayMs ? 0 : this.step + 1;
    this.attempts = 0;
    this.failedAt = now;
    this.schedule();
  }

  /** Cancels the next attempt, ends one in progress at its next step, and waits for it (before the store closes). */
  async stop(): Promise<void> {
    this.stopping.abort(new Error('the store is closing'));
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.attempting;
  }

  private get delayMs(): number {
    return Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** Math.min(this.step, 30));
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.attempting = this.attempt().finally(() => {
        this.attempting = undefined;
        // A failure while this attempt was finishing found it still running: start again.
        if (this.parts.writer.canResume && this.timer === undefined) this.start();
      });
    }, this.delayMs);
    this.timer.unref();
  }

  /** Never rejects: an attempt that fails is logged and the next one scheduled. */
  private async attempt(): Promise<void> {
    const { writer, logger } = this.parts;
    this.attempts++;
    try {
      if (!writer.canResume) return; // failed for good meanwhile (a lost lock): the writer logged why
      await this.heal();
    } catch (err) {
      if (this.stopping.signal.aborted || !writer.canResume) return;
      if (err instanceof DiskDisagrees || err instanceof CorruptDataError) {
        // A restart is the operator's call here: it serves what is on disk, or names the damage. What is on disk is not
        // what watchers were sent, so whatever a restart serves is another history (history-id.ts).
        renewHistoryId(this.parts.dir, logger);
        writer.fail(new StoreFailedError(this.parts.dir, err));
        return;
      }
      this.step++;
      // Without the stack (a disk still full fails the same way every time), unless it is not the disk's error.
      withBriefIoErrors(logger).warn(
        { err, attempt: this.attempts, retryInMs: this.delayMs },
        `could not resume writes yet (${(err as Error).message}); retrying in ${this.delayMs} ms`,
      );
      this.schedule();
      return;
    }
    this.healedAt = Date.now();
    this.onHealed();
    logger.info({ attempts: this.attempts, ms: this.healedAt - this.failedAt }, 'the store takes writes again');
  }

  private async heal(): Promise<void> {
    const { dir, logger, writer, compactor, index, lock } = this.parts;
    const signal = this.stopping.signal;
    await compactor.stop();
    const logPath = dataFilePath(dir, logFileName(writer.activeSeq));
    const committed = writer.committedSize;
    await writer.close();
    await probeDisk(dir, Math.max(MIN_PROBE_BYTES, writer.failedAppendBytes));
    if (fs.statSync(logPath).size > committed) fs.truncateSync(logPath, committed);
    // The window is not kept (the feed keeps its own): the smallest one will do.
    const recovered = await recoverDataDir(dir, logger, { history: { maxChanges: 1, maxBytes: 1 }, signal });
    const difference = await differenceBetween(index, recovered.index, signal);
    if (difference !== undefined) {
      throw new DiskDisagrees(`the data directory no longer holds what the store served (${difference}); not resuming writes`);
    }
    const { active, sealed } = openActiveLog(dir, recovered);
    if (signal.aborted || lock.compromised !== undefined || !writer.canResume) {
      fs.closeSync(active.fd);
      signal.throwIfAborted();
      throw new Error('the store failed for good meanwhile');
    }
    writer.resume(active);
    compactor.resume(sealed);
  }
}

/** Writes and fdatasyncs `bytes` to a probe file, then deletes it: rejects with the disk's error if it cannot. */
async function probeDisk(dir: string, bytes: number): Promise<void> {
  const probePath = dataFilePath(dir, PROBE_FILE);
  const fh = await fs.promises.open(probePath, 'w');
  try {
    const zeros = Buffer.alloc(Math.min(bytes, PROBE_CHUNK_BYTES));
    for (let done = 0; done < bytes;) {
      done += (await fh.write(zeros, 0, Math.min(zeros.length, bytes - done), done)).bytesWritten;
    }
    await fh.datasync();
  } finally {
    await fh.close();
    await fs.promises.rm(probePath, { force: true });
  }
}

/** Undefined if both indexes hold the same revision and the same entries, else what differs first. */
async function differenceBetween(memory: StoreIndex, disk: StoreIndex, signal: AbortSignal): Promise<string | undefined> {
  if (disk.revision !== memory.revision) return `its log ends at revision ${disk.revision}, the store is at ${memory.revision}`;
  if (disk.size !== memory.size) return `${disk.size} keys on disk, ${memory.size} in memory`;
  if (disk.leaseCount !== memory.leaseCount) return `${disk.leaseCount} leases on disk, ${memory.leaseCount} in memory`;
  for (const lease of disk.allLeases()) {
    const served = memory.lease(lease.id);
    if (
      served === undefined ||
      served.ttlMs !== lease.ttlMs ||
      served.keys.size !== lease.keys.size ||
      [...lease.keys].some((k) => !served.keys.has(k))
    ) {
      return `lease ${lease.id} differs`;
    }
  }
  let compared = 0;
  for (const [key, entry] of disk.entriesUnder('')) {
    const served = memory.get(key);
    if (served === undefined || !shallowEqual(served, entry)) return `key ${JSON.stringify(key)} differs`;
    // Nothing changes the index meanwhile: the failed writer commits nothing.
    if (++compared % COMPARE_YIELD_EVERY === 0) {
      await new Promise((resolve) => setImmediate(resolve));
      signal.throwIfAborted();
    }
  }
  return undefined;
}

function shallowEqual(a: object, b: object): boolean {
  const aFields = Object.entries(a);
  return aFields.length === Object.keys(b).length && aFields.every(([field, value]) => (b as Record<string, unknown>)[field] === value);
}
