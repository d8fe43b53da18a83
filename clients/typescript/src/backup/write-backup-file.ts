import fs from 'node:fs';
import path from 'node:path';
import { BACKUP_FILE_MAGIC, BackupChecker, type BackupProgress, type BackupSummary, verifyBackupFile } from './backup-file';

/**
 * Writes the messages of a Backup stream (each message's bytes as the
 * server sent them) to `file`, in the layout backup-file.ts describes.
 * The stream is opened (`open`) only once the file could be created, so a
 * file that cannot be written fails before anything is asked of the
 * server; a `file` that is a directory, or no name at all, fails first.
 * The stream is checked as it arrives (order, counts, the trailer's
 * checksum); then the file is fsynced, read back and checked again, and
 * only then renamed to `file` (replacing an older backup atomically). On
 * any failure nothing is left behind and an existing `file` is untouched.
 */
export async function writeBackupFile(
  open: () => AsyncIterable<Buffer>,
  file: string,
  onProgress: (progress: BackupProgress) => void = () => undefined,
): Promise<BackupSummary> {
  if (file === '') throw Object.assign(new Error('no backup file named'), { code: 'ENOENT' });
  if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() === true) {
    throw Object.assign(new Error(`${file} is a directory`), { code: 'EISDIR' });
  }
  const partial = `${file}.partial-${process.pid}`;
  let fd: number | undefined = fs.openSync(partial, 'wx');
  let kept = false;
  try {
    const messages = open();
    const checker = new BackupChecker("the server's backup stream");
    writeFully(fd, BACKUP_FILE_MAGIC);
    let bytes = BACKUP_FILE_MAGIC.length;
    let count = 0;
    const length = Buffer.alloc(4);
    for await (const message of messages) {
      checker.take(message, `in message ${++count}`);
      length.writeUInt32LE(message.length);
      writeFully(fd, length);
      writeFully(fd, message);
      bytes += length.length + message.length;
      onProgress({ keys: checker.keys, keyCount: checker.header?.keyCount, bytes });
    }
    checker.finished(`after ${count} messages`);
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
