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
 * the writer loop moves on.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from '../../logger';
import { dataFilePath, logFileName, syncDirectory } from './data-dir-files';
import { FILE_HEADER_SIZE, FileKind, encodeFileHeader } from './record-codec';

export type FsyncMode = 'always' | 'interval' | 'never';

const fdatasync = promisify(fs.fdatasync);

export interface ActiveLog {
  seq: number;
  fd: number;
  size: number;
}

/** Creates a new, empty log file whose header is durable before any record goes in. */
export function createLogFile(dir: string, seq: number, baseRevision: number): ActiveLog {
  const fd = fs.openSync(dataFilePath(dir, logFileName(seq)), 'wx');
  try {
    writeFully(fd, encodeFileHeader({ kind: FileKind.Log, baseRevision }), 0);
    fs.fdatasyncSync(fd);
    syncDirectory(dir);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { seq, fd, size: FILE_HEADER_SIZE };
}

/** Opens an existing (recovered) log for appending at `size`. */
export function openLogFile(dir: string, seq: number, size: number): ActiveLog {
  return { seq, fd: fs.openSync(dataFilePath(dir, logFileName(seq)), 'r+'), size };
}

function writeFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

export class LogWriter {
  /** Set once a write or sync fails: the file's tail is then unknown, so no more writes. */
  failure: Error | undefined;
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

  append(buf: Buffer): void {
    try {
      writeFully(this.active.fd, buf, this.active.size);
    } catch (err) {
      this.failure = err as Error;
      throw err;
    }
    this.active.size += buf.length;
    this.dirty = true;
    if (this.mode === 'interval' && this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // A failure is logged and recorded in `failure`; the next write reports it.
        this.sync().catch(() => undefined);
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  /** Resolves when the appended bytes are as durable as the mode promises. */
  async commit(): Promise<void> {
    if (this.mode === 'always') await this.sync();
  }

  /** fdatasyncs the active log if it has unsynced bytes; concurrent callers share one call. */
  async sync(): Promise<void> {
    while (this.syncing !== undefined) await this.syncing.catch(() => undefined);
    if (this.failure !== undefined) throw this.failure;
    if (!this.dirty) return;
    this.dirty = false;
    const fd = this.active.fd;
    this.syncing = fdatasync(fd).then(
      () => {
        this.syncing = undefined;
      },
      (err: Error) => {
        this.syncing = undefined;
        this.failure = err;
        this.logger.error({ err }, 'fdatasync of the log failed; the store refuses further writes');
        throw err;
      },
    );
    await this.syncing;
  }

  /**
   * Seals the active log (synced, so that only the newest file can ever have
   * a torn tail) and starts a new one. Returns the sealed log's seq and size.
   */
  async rotate(newSeq: number, baseRevision: number): Promise<{ seq: number; size: number }> {
    this.dirty = true;
    await this.sync();
    const sealed = this.active;
    this.active = createLogFile(this.dir, newSeq, baseRevision);
    fs.closeSync(sealed.fd);
    return { seq: sealed.seq, size: sealed.size };
  }

  /** Syncs whatever is unsynced (in every mode) and closes the file. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      if (this.failure === undefined) await this.sync();
    } finally {
      fs.closeSync(this.active.fd);
    }
  }
}
