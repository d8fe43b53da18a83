import fs from 'node:fs';
import path from 'node:path';
import {
  BACKUP_FILE_MAGIC,
  BackupChecker,
  type BackupHeader,
  type BackupProgress,
  type BackupSummary,
  verifyBackupFile,
} from './backup-file';

/** Where a backup goes: a path, or a stream (say, process.stdout) that is written straight through and left open. */
export type BackupDestination = string | NodeJS.WritableStream;

/** rw-------: a backup holds every key and value, in the clear (as etcdctl snapshot save writes its snapshots). */
const OWNER_ONLY = 0o600;

/** Where the bytes of a backup go as they arrive. */
interface Sink {
  write(bytes: Buffer): Promise<void> | void;
}

/**
 * Writes the messages of a Backup stream (each message's bytes as the
 * server sent them) to `destination`, in the layout backup-file.ts
 * describes. The stream is opened (`open`) only once the destination could
 * be opened, so one that cannot be written fails before anything is asked of
 * the server; a directory, or no name at all, fails first. The stream is
 * checked as it arrives (order, counts, the trailer's checksum).
 *
 * - A regular file, a path that does not exist yet, or a symbolic link to
 *   one (dangling or not): written beside it, fsynced, read back and checked
 *   again, and only then renamed over it (over a link's target: the link is
 *   kept), replacing an older backup atomically. The file is created mode
 *   0600, so no umask lets others read it (it holds every key and value),
 *   and a backup replacing a more open file is 0600 too. On any failure, an exception
 *   thrown by `onProgress` included (the way to stop a backup: say, on
 *   Ctrl-C), nothing is left behind and an existing file is untouched.
 * - A path that exists and is something else once links are followed (a
 *   device, a FIFO, /dev/stdout): written straight through, never replaced
 *   (fsynced where that applies). A stream: the same, and left open. A
 *   failure there comes after part of the backup may have been written.
 */
export async function writeBackupFile(
  open: () => AsyncIterable<Buffer>,
  destination: BackupDestination,
  onProgress: (progress: BackupProgress) => void = () => undefined,
): Promise<BackupSummary> {
  if (typeof destination !== 'string') return writeToStream(open, destination, onProgress);
  if (destination === '') throw Object.assign(new Error('no backup file named'), { code: 'ENOENT' });
  const target = followLinks(destination);
  const stats = fs.statSync(target, { throwIfNoEntry: false });
  if (stats?.isDirectory() === true) throw Object.assign(new Error(`${destination} is a directory`), { code: 'EISDIR' });
  if (stats !== undefined && !stats.isFile()) return writeThrough(open, target, onProgress);
  return writeAndRename(open, target, onProgress);
}

/** A regular file: written beside `file`, checked, then renamed over it. */
async function writeAndRename(
  open: () => AsyncIterable<Buffer>,
  file: string,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupSummary> {
  const partial = `${file}.partial-${process.pid}`;
  let fd: number | undefined = openBeside(partial, file);
  let kept = false;
  try {
    const opened = fd;
    await copyStream(open, { write: (bytes) => writeFully(opened, bytes) }, onProgress);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    // What the disk gives back is what a restore will read.
    const summary = verifyBackupFile(partial);
    fs.renameSync(partial, file);
    syncDirectory(path.dirname(path.resolve(file)));
    kept = true;
    return summary;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
    if (!kept) fs.rmSync(partial, { force: true });
  }
}

/**
 * Creates the file a backup is written to before it is renamed to `file`. Its
 * failure (a missing directory, no permission) names `file`, the path the
 * caller gave, not the temporary name; the error keeps its code (ENOENT,
 * EACCES, ...).
 */
function openBeside(partial: string, file: string): number {
  try {
    return fs.openSync(partial, 'wx', OWNER_ONLY);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    if (typeof code !== 'string') throw error;
    const words = message.replace(/^[A-Z]+: /, '').replace(/, open '.*'$/, '');
    throw Object.assign(new Error(`${code}: ${words}: cannot create ${file}`), { code, path: file, syscall: 'open' });
  }
}

/** A device or FIFO: written as it comes, in place. Opened asynchronously: a FIFO's open waits for its reader. */
async function writeThrough(
  open: () => AsyncIterable<Buffer>,
  file: string,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupSummary> {
  // The mode counts only if the path was removed since it was looked at: then this creates a regular file.
  const handle = await fs.promises.open(file, 'w', OWNER_ONLY);
  try {
    const summary = await copyStream(
      open,
      {
        write: async (bytes) => {
          let done = 0;
          while (done < bytes.length) done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
        },
      },
      onProgress,
    );
    try {
      await handle.sync();
    } catch (error) {
      // A FIFO or a character device has nothing to flush.
      if (!['EINVAL', 'ENOTSUP', 'EROFS'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
    return summary;
  } finally {
    await handle.close();
  }
}

/** A stream: written with its backpressure, every write acknowledged before the backup counts as written. */
async function writeToStream(
  open: () => AsyncIterable<Buffer>,
  stream: NodeJS.WritableStream,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupSummary> {
  // An object, not a variable: the stream's 'error' event sets it between awaits.
  const failed: { error?: Error } = {};
  const check = (): void => {
    if (failed.error !== undefined) throw failed.error;
  };
  const onError = (error: Error): void => void (failed.error ??= error);
  stream.on('error', onError);
  let last: Promise<void> = Promise.resolve();
  try {
    const writeChunk = async (bytes: Buffer): Promise<void> => {
      check();
      last = new Promise((resolve, reject) => {
        stream.write(bytes, (error) => (error ? reject(error) : resolve()));
      });
      // A rejection is met by the next write or the final await.
      last.catch(() => undefined);
      if ((stream as { writableNeedDrain?: boolean }).writableNeedDrain === true) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done);
            stream.off('error', done);
            resolve();
          };
          stream.on('drain', done);
          stream.on('error', done);
        });
      }
      check();
    };
    const summary = await copyStream(open, { write: writeChunk }, onProgress);
    await last;
    check();
    return summary;
  } finally {
    stream.off('error', onError);
  }
}

/** Copies the checked stream to `sink` in the file layout; the summary of what the checker saw. */
async function copyStream(
  open: () => AsyncIterable<Buffer>,
  sink: Sink,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupSummary> {
  const messages = open();
  const checker = new BackupChecker("the server's backup stream");
  let bytes = BACKUP_FILE_MAGIC.length;
  let count = 0;
  for await (const message of messages) {
    // Once the server has answered: a backup it refuses (no permission, no connection) leaves a stream sink empty.
    if (count === 0) await sink.write(BACKUP_FILE_MAGIC);
    checker.take(message, `in message ${++count}`);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(message.length);
    await sink.write(length);
    await sink.write(message);
    bytes += length.length + message.length;
    onProgress({ keys: checker.keys, keyCount: checker.header?.keyCount, bytes });
  }
  checker.finished(`after ${count} messages`);
  const header = checker.header as BackupHeader;
  return {
    revision: header.revision,
    keyCount: header.keyCount,
    leaseCount: header.leaseCount,
    createdAtMs: header.createdAtMs,
    bytes,
    sha256: checker.checksum,
  };
}

/** The path `file` names once symbolic links are followed, the last one possibly dangling (then the path it points to). */
function followLinks(file: string): string {
  let current = file;
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    try {
      link = fs.readlinkSync(current);
    } catch {
      // Not a link (EINVAL), not there (ENOENT), or not reachable: the operations on it say why, if it matters.
      return current;
    }
    current = path.resolve(path.dirname(current), link);
  }
  throw Object.assign(new Error(`${file}: too many levels of symbolic links`), { code: 'ELOOP' });
}

function writeFully(fd: number, bytes: Buffer): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
