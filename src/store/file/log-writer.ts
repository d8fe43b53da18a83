/**
 * The active log file: appends batches and makes them durable according to
 * the fsync mode.
 *
 *   always    the caller awaits commit(), one fdatasync per batch (group commit)
 *   interval  commit() returns at once; a timer fdatasyncs at most every
 *             intervalMs while there are unsynced bytes (Redis "everysec")
 *   never     commit() returns at once; the OS writes pages back when it likes
 *
 * Appends use a synchronous positioned write: it only copies into the page
 * cache, and keeping it synchronous means a batch is never half-queued when
 * the commit loop moves on.
 *
 * In fsync=always mode the file is kept ahead of its last batch by zeros,
 * written a megabyte at a time (as etcd preallocates its WAL): a batch
 * written over them leaves the file's size as it was, so its fdatasync
 * writes the data alone, without a journal commit for the new size (an
 * fdatasync of a small append measured about a third cheaper here). The
 * other modes append past the end instead: with no fdatasync per batch the
 * zeros buy nothing, and a write over blocks already allocated costs the
 * filesystem more than one past the end (ext4: about 0.7 µs more per batch,
 * most of what a write costs in fsync=never mode). Recovery reads zeros
 * after the last batch of the newest log as its unwritten end; sealing a log
 * (rotate) and a clean close cut them off again, so every other log ends at
 * its last batch.
 */
import fs from 'node:fs';
import pino from 'pino';
import type { Logger } from '../../logger';
import { CorruptDataError, StoreFailedError } from '../errors';
import { dataFilePath, logFileName, syncDirectory } from './data-dir-files';
import { namingFile } from './io-error-path';
import type { Change } from '../change';
import { NO_STORE_OBSERVER, type StoreObserver } from '../store-observer';
import type { SealedFile } from './compact';
import type { RecoveredState } from './recover-log';
import { FILE_HEADER_SIZE, FORMAT_VERSION, FileKind, decodeFileHeader, encodeBatch, encodeFileHeader, newFileNonce } from './record-codec';

export type FsyncMode = 'always' | 'interval' | 'never';

// Looked up at each call (not bound once), so a test can make it fail; not util.promisify'd per call, which costs a group commit of one write several µs.
const fdatasync = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err === null ? resolve() : reject(err))));

/** How far ahead of the last batch the log is zero-filled, a chunk at a time. */
export const PREALLOCATE_BYTES = 1024 * 1024;
/**
 * No zero-filling while the filesystem has less free than this: the last of
 * a disk goes to writes, so a full disk refuses a batch where it did before.
 */
const PREALLOCATE_MIN_FREE_BYTES = 16 * PREALLOCATE_BYTES;
let zeros: Buffer | undefined;

export interface ActiveLog {
  seq: number;
  fd: number;
  size: number;
  /** Bytes known durable: a completed fdatasync covered everything before this offset. */
  synced: number;
  /** The file nonce from its header, written into every BATCH record. */
  nonce: Buffer;
  /** Where the zeros written ahead of `size` end (see above); a batch that reaches it writes the next chunk. */
  length: number;
}

/**
 * Creates a new, empty log file whose header is durable before any record
 * goes in. If that fails the file is removed again: left behind, it would
 * make every later creation of the same name fail (EEXIST).
 */
export function createLogFile(dir: string, seq: number, baseRevision: number): ActiveLog {
  const filePath = dataFilePath(dir, logFileName(seq));
  const fd = fs.openSync(filePath, 'wx', 0o600);
  const nonce = newFileNonce();
  try {
    namingFile(filePath, () => {
      writeFully(fd, encodeFileHeader({ kind: FileKind.Log, baseRevision, nonce }), 0);
      fs.fdatasyncSync(fd);
    });
    namingFile(dir, () => syncDirectory(dir));
  } catch (err) {
    fs.closeSync(fd);
    // If this fails too, recovery removes the file (a newest log without records).
    fs.rmSync(filePath, { force: true });
    throw err;
  }
  return { seq, fd, size: FILE_HEADER_SIZE, synced: FILE_HEADER_SIZE, nonce, length: FILE_HEADER_SIZE };
}

/**
 * Opens an existing (recovered) log for appending at `size`. It is
 * fdatasynced first: what replay read may still be only in the page cache (a
 * process killed in fsync=never mode), and the batches appended next record
 * that everything before them is durable. Undefined for a log of an older
 * format version: its header says which records it may hold, so nothing of
 * this version is appended to it (a new log is started instead).
 */
function openLogFile(dir: string, seq: number, size: number): ActiveLog | undefined {
  const filePath = dataFilePath(dir, logFileName(seq));
  const fd = fs.openSync(filePath, 'r+');
  let nonce: Buffer;
  try {
    // Recovery checked this header; its nonce goes into every batch appended.
    const headerBuf = Buffer.alloc(FILE_HEADER_SIZE);
    const header = decodeFileHeader(headerBuf.subarray(0, fs.readSync(fd, headerBuf, 0, FILE_HEADER_SIZE, 0)));
    if (typeof header === 'string') throw new CorruptDataError(filePath, 0, header);
    namingFile(filePath, () => fs.fdatasyncSync(fd));
    if (header.version !== FORMAT_VERSION) {
      fs.closeSync(fd);
      return undefined;
    }
    nonce = header.nonce;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { seq, fd, size, synced: size, nonce, length: fs.fstatSync(fd).size };
}

/**
 * After recovery, what a restart does before taking writes: deletes the
 * files recovery found obsolete (before a new log is created: a removed
 * leftover log may have its name), then opens the newest log for appending,
 * or starts one after a snapshot. Returns it and the data files before it.
 */
export function openActiveLog(dir: string, recovered: RecoveredState): { active: ActiveLog; sealed: SealedFile[] } {
  if (recovered.obsolete.length > 0) {
    for (const name of recovered.obsolete) fs.rmSync(dataFilePath(dir, name), { force: true });
    syncDirectory(dir);
  }
  const sealed = recovered.files.map(({ seq, name, size, checkpoint }) => ({ seq, name, size, checkpoint }));
  const last = recovered.files.at(-1);
  if (last !== undefined && last.kind === FileKind.Log) {
    const active = openLogFile(dir, last.seq, last.size);
    if (active !== undefined) {
      sealed.pop();
      return { active, sealed };
    }
  }
  return { active: createLogFile(dir, (last?.seq ?? 0) + 1, recovered.revision), sealed };
}

function writeFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

/**
 * `logger`, logging an error from the operating system under `err` (ENOSPC, EIO, EPERM...: a code such as
 * "ENOSPC") as its type, message, code, errno, syscall and path, without its stack: it says what the disk refused,
 * not where the code went wrong, and a disk that stays full repeats it at every heal attempt. At debug level, and
 * for any other error, the stack is kept.
 */
export function withBriefIoErrors(logger: Logger): Logger {
  if (logger.isLevelEnabled('debug')) return logger;
  return logger.child({}, { serializers: { err: briefIoError } });
}

function briefIoError(err: unknown): unknown {
  // Not `instanceof Error`: an error made in another realm (a vm context) is one too.
  const { code, message, errno, syscall, path } = (err ?? {}) as Partial<NodeJS.ErrnoException>;
  if (typeof message !== 'string' || typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return pino.stdSerializers.err(err as Error);
  const type = (err as Error).constructor?.name ?? 'Error';
  return Object.fromEntries(Object.entries({ type, message, code, errno, syscall, path }).filter(([, v]) => v !== undefined));
}

export class LogWriter {
  /** Set once a write or sync fails (the file's tail is then unknown) or fail() is called: no more writes until resume(). */
  failure: StoreFailedError | undefined;
  /** Called once per I/O failure (not for fail()), so the store can start healing. */
  onIoFailure: () => void = () => undefined;
  /** Bytes of the batch whose append failed (0 if a sync failed): the room a heal makes sure of first. */
  failedAppendBytes = 0;
  /** Told how long each fdatasync of the log took (metrics). */
  observer: StoreObserver = NO_STORE_OBSERVER;
  /** fail() was called: the failure is for good, resume() is refused. */
  private final = false;
  private closed = false;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private active: ActiveLog,
    private readonly mode: FsyncMode,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  get activeSeq(): number {
    return this.active.seq;
  }

  get activeSize(): number {
    return this.active.size;
  }

  private get activePath(): string {
    return dataFilePath(this.dir, logFileName(this.active.seq));
  }

  /**
   * Bytes of the active log that belong to committed batches: in fsync
   * 'always' mode the durable ones (a batch is acknowledged only after its
   * fdatasync), otherwise every batch appended whole (acknowledged at once).
   * Anything after this is a batch that failed; a heal cuts it off.
   */
  get committedSize(): number {
    return this.mode === 'always' ? this.active.synced : this.active.size;
  }

  /** Whether the writer failed on I/O and may resume(); false after fail(). */
  get canResume(): boolean {
    return this.failure !== undefined && !this.final;
  }

  /** Stops all further writes with `failure`, for good (the first final failure wins over an I/O one being healed). */
  fail(failure: StoreFailedError): void {
    if (this.final) return;
    this.final = true;
    this.failure = failure;
    withBriefIoErrors(this.logger).error({ err: failure.cause, file: failure.file }, failure.message);
  }

  /** An append or sync failed: no writes until a heal resume()s the writer. */
  private failOnIo(filePath: string, err: Error): StoreFailedError {
    if (this.failure !== undefined) return this.failure;
    this.failure = new StoreFailedError(filePath, err, true);
    withBriefIoErrors(this.logger).error({ err, file: filePath }, this.failure.message);
    this.cutUncommitted();
    this.onIoFailure();
    return this.failure;
  }

  /**
   * Cuts what the failure left past the committed batches off the log at
   * once (a heal does it again, as its step 3): the failed batch was never
   * applied nor acknowledged, and its bytes may well be in the file (an
   * fdatasync that failed after a write that did not). Left there, a clean
   * stop and a restart would read it back as a committed batch: a write its
   * caller was told had failed. Best effort: on a disk that refuses even
   * this, the failed batch may still come back after a restart.
   */
  private cutUncommitted(): void {
    const log = this.active;
    const committed = this.committedSize;
    try {
      if (fs.fstatSync(log.fd).size <= committed) return;
      fs.ftruncateSync(log.fd, committed);
      log.size = committed;
      log.length = committed;
    } catch (err) {
      withBriefIoErrors(this.logger).error(
        { err, file: this.activePath, offset: committed },
        `could not cut the failed batch off ${this.activePath} at byte offset ${committed}; a restart may read it back`,
      );
    }
  }

  /** After a heal: appends to `active` (a log recovery checked) from now on. Call only after close(). */
  resume(active: ActiveLog): void {
    if (!this.canResume || !this.closed) throw new Error('the log writer can only resume after an I/O failure and close()');
    this.active = active;
    this.failure = undefined;
    this.failedAppendBytes = 0;
    this.dirty = false;
    this.closed = false;
  }

  /** Step 2 of a commit, append: the changes as one batch (its BATCH record first) at the end of the log. */
  append(changes: readonly Change[]): void {
    if (this.failure !== undefined) throw this.failure;
    const batch = encodeBatch(changes, this.active.synced, this.active.nonce);
    try {
      writeFully(this.active.fd, batch, this.active.size);
    } catch (err) {
      this.failedAppendBytes = batch.length;
      throw this.failOnIo(this.activePath, err as Error);
    }
    this.active.size += batch.length;
    this.dirty = true;
    if (this.mode === 'always' && this.active.size > this.active.length) this.preallocate();
    if (this.mode === 'interval' && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // A failure is logged and recorded in `failure`; the next write reports it.
        this.sync().catch(() => undefined);
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  /**
   * Zero-fills the next chunk past the last batch. Best effort: a batch is
   * durable by its own write and fdatasync whatever this does, so a failure
   * here (a disk filling up) only means the next batches extend the file.
   */
  private preallocate(): void {
    const log = this.active;
    log.length = log.size;
    try {
      const free = fs.statfsSync(this.dir);
      if (free.bavail * free.bsize < PREALLOCATE_MIN_FREE_BYTES) return;
      zeros ??= Buffer.alloc(PREALLOCATE_BYTES);
      writeFully(log.fd, zeros, log.size);
      log.length = log.size + PREALLOCATE_BYTES;
    } catch (err) {
      // Zeros a failed write left past `size` are harmless: batches go over them, and sealing or closing cuts them off.
      this.logger.debug({ err, file: this.activePath }, 'could not write zeros ahead of the log; it grows with each batch instead');
    }
  }

  /**
   * Cuts the zeros written ahead off the log's end and makes that durable,
   * so a log that is no longer the newest ends at its last batch.
   */
  private async trimPreallocated(log: ActiveLog): Promise<void> {
    // The file's own length, not `log.length`: a zero-fill that failed part way leaves zeros it does not count.
    if (fs.fstatSync(log.fd).size === log.size) return;
    fs.ftruncateSync(log.fd, log.size);
    log.length = log.size;
    await fdatasync(log.fd);
  }

  /**
   * Resolves when the appended bytes are as durable as the mode promises;
   * undefined when they already are (interval, never), so the commit loop
   * need not wait a turn of the microtask queue for nothing.
   */
  commit(): Promise<void> | undefined {
    return this.mode === 'always' ? this.sync() : undefined;
  }

  /** fdatasyncs the active log if it has unsynced bytes; concurrent callers share one call. */
  async sync(): Promise<void> {
    while (this.syncing !== undefined) await this.syncing.catch(() => undefined);
    if (this.failure !== undefined) throw this.failure;
    if (!this.dirty) return;
    this.dirty = false;
    const log = this.active;
    const upTo = log.size;
    const filePath = this.activePath;
    const startedAt = performance.now();
    this.syncing = fdatasync(log.fd).then(
      () => {
        this.syncing = undefined;
        log.synced = upTo;
        this.observer.synced((performance.now() - startedAt) / 1000);
      },
      (err: Error) => {
        this.syncing = undefined;
        this.observer.synced((performance.now() - startedAt) / 1000);
        throw this.failOnIo(filePath, err);
      },
    );
    await this.syncing;
  }

  /**
   * Seals the active log (synced, so that only the newest file can ever have
   * a torn tail) and starts a new one. Returns the sealed log's seq and size.
   * If only the new log could not be created, the old one stays active and
   * the store goes on; if the sync failed, the store has failed.
   */
  async rotate(newSeq: number, baseRevision: number): Promise<{ seq: number; size: number }> {
    await this.sync();
    const sealed = this.active;
    try {
      await this.trimPreallocated(sealed);
    } catch (err) {
      throw this.failOnIo(this.activePath, err as Error);
    }
    this.active = createLogFile(this.dir, newSeq, baseRevision);
    fs.closeSync(sealed.fd);
    return { seq: sealed.seq, size: sealed.size };
  }

  /** Syncs whatever is unsynced (in every mode) and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      if (this.failure === undefined) {
        await this.sync();
        await this.trimPreallocated(this.active);
      }
    } finally {
      // An fdatasync already running (an interval-timer sync, when the writer
      // failed meanwhile and sync() above was skipped or threw) must end
      // before its fd is closed: closing under it could sync or, once the fd
      // number is reused, touch another file. Its error is already recorded.
      while (this.syncing !== undefined) await this.syncing.catch(() => undefined);
      this.closed = true;
      fs.closeSync(this.active.fd);
    }
  }
}
