/**
 * Compaction: when dead bytes (overwritten, deleted or cleared records) outweigh
 * live bytes by the configured ratio, the live set is written to a snapshot and
 * the files it replaces are deleted. Reads and writes go on meanwhile.
 *
 * Steps, and why a crash at any point recovers correctly:
 *   1. at a batch boundary, seal the active log N (fdatasync) and start log
 *      N+2; take an O(1) frozen view of the index: the state as of the end of N.
 *      Crash: N and N+2 replay in order.
 *   2. write the view to snap-(N+1).snap.tmp in chunks, yielding between
 *      them; fdatasync. Crash: *.tmp is ignored and deleted at open.
 *   3. rename to snap-(N+1).snap, fsync the directory. Crash: open starts at
 *      the snapshot (it holds everything up to N) and replays N+2; files
 *      numbered below N+1 are obsolete and deleted at open.
 *   4. delete the files numbered below N+1, fsync the directory. Crash: as 3.
 */
import fs from 'node:fs';
import type { Logger } from '../../logger';
import type { StoredEntry } from '../change';
import { NO_STORE_OBSERVER, type StoreObserver } from '../store-observer';
import { dataFilePath, logFileName, snapshotFileName, syncDirectory } from './data-dir-files';
import type { LogWriter } from './log-writer';
import {
  FILE_HEADER_SIZE,
  FileKind,
  LEASE_GRANT_RECORD_SIZE,
  encodeFileHeader,
  newFileNonce,
  setRecordSize,
  writeLeaseGrantRecord,
  writeSetRecord,
} from './record-codec';
import type { IndexSnapshot, StoreIndex } from './store-index';

export interface CompactionOptions {
  /** Never compact while the data files total less than this (default 64 MiB). */
  minBytes?: number;
  /** Compact when dead bytes ≥ this × live bytes (default 1.0: disk stays within ~2× live). */
  deadToLiveRatio?: number;
  /** After a failed attempt, wait this long before the next one (default 10000 ms). */
  retryAfterMs?: number;
}

interface SealedFile {
  seq: number;
  name: string;
  size: number;
}

const CHUNK_BYTES = 1024 * 1024;

class CompactionStopped extends Error {}

export class Compactor {
  private readonly minBytes: number;
  private readonly ratio: number;
  private readonly retryAfterMs: number;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** After a failed attempt, no retry before this time (ms), so a full disk is not hammered. */
  private retryAfter = 0;
  /** Called after each compaction attempt ends (set by the commit loop). */
  onFinished: () => void = () => undefined;
  /** Told how each compaction went (metrics). */
  observer: StoreObserver = NO_STORE_OBSERVER;

  constructor(
    private readonly dir: string,
    /** Data files before the active log, oldest first. */
    private sealed: SealedFile[],
    private readonly writer: LogWriter,
    private readonly index: StoreIndex,
    options: CompactionOptions,
    private readonly logger: Logger,
  ) {
    this.minBytes = options.minBytes ?? 64 * 1024 * 1024;
    this.ratio = options.deadToLiveRatio ?? 1.0;
    this.retryAfterMs = options.retryAfterMs ?? 10_000;
  }

  /** Bytes of all data files, the active log included. */
  get diskBytes(): number {
    let n = this.writer.activeSize;
    for (const f of this.sealed) n += f.size;
    return n;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Whether compaction should start now; the commit loop asks between batches. */
  isDue(): boolean {
    if (this.running !== undefined || this.stopping || Date.now() < this.retryAfter) return false;
    const disk = this.diskBytes;
    return disk >= this.minBytes && disk - this.index.liveBytes >= this.ratio * this.index.liveBytes;
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
    const snapshot = this.index.snapshot();
    const baseRevision = this.index.revision;
    const replaced = this.sealed.slice();
    this.logger.info({ snapshot: snapshotFileName(snapSeq), replacedFiles: replaced.length }, 'compaction started');
    // run() handles its own errors; the catch is a backstop, since nothing
    // else awaits this promise and a rejection would end the process.
    this.running = this.run(snapSeq, baseRevision, snapshot, replaced, startedAt)
      .catch((err: unknown) => {
        this.retryAfter = Date.now() + this.retryAfterMs;
        this.logger.error({ err, retryAfterMs: this.retryAfterMs }, `compaction failed; retrying in ${this.retryAfterMs} ms`);
      })
      .finally(() => {
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

  private async run(seq: number, baseRevision: number, snapshot: IndexSnapshot, replaced: SealedFile[], startedAt: number): Promise<void> {
    const seconds = (): number => (performance.now() - startedAt) / 1000;
    const name = snapshotFileName(seq);
    const tmpPath = dataFilePath(this.dir, `${name}.tmp`);
    let size: number;
    try {
      size = await this.writeSnapshot(tmpPath, baseRevision, snapshot);
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
        this.logger.error({ err, retryAfterMs: this.retryAfterMs }, `compaction failed; retrying in ${this.retryAfterMs} ms`);
        this.retryAfter = Date.now() + this.retryAfterMs;
        this.observer.compacted({ ok: false, seconds: seconds(), reclaimedBytes: 0 });
      }
      return;
    }
    // The snapshot is durable: from here the replaced files are never read again.
    this.sealed = [{ seq, name, size }, ...this.sealed.filter((f) => !replaced.includes(f))];
    if (this.writer.failure !== undefined) return;
    let reclaimedBytes = 0;
    try {
      for (const f of replaced) fs.rmSync(dataFilePath(this.dir, f.name), { force: true });
      syncDirectory(this.dir);
      reclaimedBytes = Math.max(0, replaced.reduce((sum, f) => sum + f.size, 0) - size);
    } catch (err) {
      this.logger.error({ err }, 'could not delete files replaced by a snapshot; they are deleted at next open');
    }
    this.observer.compacted({ ok: true, seconds: seconds(), reclaimedBytes });
    this.logger.info({ snapshot: name, bytes: size, diskBytes: this.diskBytes }, 'compaction finished');
  }

  private async writeSnapshot(tmpPath: string, baseRevision: number, snapshot: IndexSnapshot): Promise<number> {
    try {
      return await writeSnapshotFile(tmpPath, baseRevision, snapshot, () => {
        // Between chunks the writer yields to the event loop; this is where close() gets a say.
        if (this.stopping) throw new CompactionStopped();
      });
    } finally {
      // Writes stop saving old entries for the view once it is no longer read.
      this.index.release(snapshot);
    }
  }
}

/** What a snapshot file holds: the live leases, then every key in code point order. An IndexSnapshot is one; a restore builds another. */
export interface SnapshotContents {
  readonly leases: Iterable<{ id: number; ttlMs: number }>;
  entries(): Iterable<readonly [string, StoredEntry]>;
}

/**
 * Writes a snapshot file (the one writer of the format): the header, a
 * LEASE_GRANT record per lease, a SET record per key, in 1 MiB chunks, then
 * fdatasync. `filePath` must not exist. `afterChunk` runs after each chunk
 * is written (it may throw to stop). Returns the file's size.
 */
export async function writeSnapshotFile(
  filePath: string,
  baseRevision: number,
  snapshot: SnapshotContents,
  afterChunk: () => void = () => undefined,
): Promise<number> {
  const fh = await fs.promises.open(filePath, 'wx');
  try {
    await fh.write(encodeFileHeader({ kind: FileKind.Snapshot, baseRevision, nonce: newFileNonce() }), 0, FILE_HEADER_SIZE, 0);
    let position = FILE_HEADER_SIZE;
    let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let used = 0;
    const flush = async (): Promise<void> => {
      let done = 0;
      while (done < used) done += (await fh.write(chunk, done, used - done, position + done)).bytesWritten;
      position += used;
      used = 0;
      afterChunk();
    };
    // Leases first, so that loading a key finds its lease.
    for (const lease of snapshot.leases) {
      if (used + LEASE_GRANT_RECORD_SIZE > chunk.length) await flush();
      used = writeLeaseGrantRecord(chunk, used, baseRevision, lease.id, lease.ttlMs);
    }
    for (const [key, e] of snapshot.entries()) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      const valueBytes = Buffer.byteLength(e.valueJson, 'utf8');
      const size = setRecordSize(keyBytes, valueBytes, e.lease);
      if (used + size > chunk.length) {
        await flush();
        if (size > chunk.length) chunk = Buffer.allocUnsafe(size);
      }
      used = writeSetRecord(chunk, used, key, keyBytes, e, valueBytes);
    }
    await flush();
    await fh.datasync();
    return position;
  } finally {
    await fh.close();
  }
}
