/**
 * The store's history id (WatchResponse.history_id): 16 hex digits, kept in
 * the data directory's `history-id` file, that stay the same for as long as
 * every revision names the same change. A watch that resumes on a store with
 * another id would pass over changes (their revisions were reused), so a
 * client that sees the id change reads the state again instead.
 *
 * What gives revisions to other changes, and so a new id:
 * - a restore from a backup (restore-data-dir.ts writes a new id): the
 *   restored store goes on from the backup's revision;
 * - with --fsync interval or never, the machine going down: watchers were
 *   sent changes that were only in the page cache (the log is written before
 *   a change is published, but not fdatasynced), and a restart reuses their
 *   revisions. While such a run is open the file says so, with the kernel's
 *   boot id; a restart on the same boot (the process was killed, the page
 *   cache kept every write) keeps the id, one after the machine restarted
 *   (or that cannot tell) takes a new one. A clean close, whose last
 *   fdatasync covered everything, marks the file clean again.
 * With --fsync always a change is published only once it is durable, so the
 * id survives every crash. Two more cases take a new id: a heal that finds
 * the disk disagrees with what was served (heal.ts), and, in the modes
 * that publish before an fdatasync, a run during which one failed: its
 * clean close does not mark the file clean (the page cache it healed from
 * may never reach the disk), so a restart after a reboot takes a new id.
 *
 * The file: one line, `<id>` when clean, `<id> unsynced <boot id>` while an
 * unsynced run is open. Replaced whole (a temp file, fsynced, renamed), so a
 * crash leaves the old line or the new one. A missing file (a directory
 * older than the id) or one that does not read as this (damaged) gives a
 * new id: at worst, watchers read the state again once.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from '../../logger';
import { dataFilePath, syncDirectory } from './data-dir-files';
import { namingFile } from './io-error-path';
import type { FsyncMode } from './log-writer';

export const HISTORY_ID_FILE = 'history-id';
const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';
/** The file's line; its final newline may be missing (a file edited by hand). */
const LINE = /^([0-9a-f]{16})(?: unsynced (\S+))?\n?$/;

export function newHistoryId(): string {
  return randomBytes(8).toString('hex');
}

/** The kernel's id of this boot (Linux); undefined where it cannot be read, which counts as a boot unlike any other. */
function bootId(): string | undefined {
  try {
    const id = fs.readFileSync(BOOT_ID_PATH, 'latin1').trim();
    return /^\S+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the file's line durably (`dir` must be locked by the caller). */
export function writeHistoryIdFile(dir: string, id: string, unsyncedBoot?: string): void {
  const line = unsyncedBoot === undefined ? `${id}\n` : `${id} unsynced ${unsyncedBoot}\n`;
  const target = dataFilePath(dir, HISTORY_ID_FILE);
  const temp = `${target}.tmp`;
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    namingFile(temp, () => {
      fs.writeSync(fd, line);
      fs.fsyncSync(fd);
    });
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  namingFile(dir, () => syncDirectory(dir));
}

function readLine(dir: string, logger: Logger): { id: string; unsyncedBoot: string | undefined; text: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(dataFilePath(dir, HISTORY_ID_FILE), 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return undefined;
  }
  const m = LINE.exec(text);
  if (m === null) {
    logger.warn({ file: dataFilePath(dir, HISTORY_ID_FILE) }, 'the history id file does not read as one: the store takes a new history id');
    return undefined;
  }
  return { id: m[1], unsyncedBoot: m[2], text };
}

/**
 * The history id of a store about to be served with `mode` (called once
 * recovery is done, with the directory locked): the file's, or a new one
 * (see the top of this file); the file then says what this run is.
 */
export function openHistoryId(dir: string, mode: FsyncMode, logger: Logger): string {
  const found = readLine(dir, logger);
  const boot = bootId();
  let id = found?.id;
  if (found?.unsyncedBoot !== undefined && found.unsyncedBoot !== boot) {
    logger.warn(
      { dataDir: dir },
      'the last run (fsync interval or never) did not close cleanly and the machine has restarted since: changes watchers were sent may be lost, so the store takes a new history id (resuming watches fail with REVISION_WENT_BACK and list again)',
    );
    id = undefined;
  }
  id ??= newHistoryId();
  const unsyncedBoot = mode === 'always' ? undefined : (boot ?? 'unknown');
  const line = unsyncedBoot === undefined ? `${id}\n` : `${id} unsynced ${unsyncedBoot}\n`;
  if (found?.text !== line) writeHistoryIdFile(dir, id, unsyncedBoot);
  return id;
}

/**
 * A new id for whatever the directory will serve next: for when what is on
 * disk is found not to be what watchers were sent (a heal that finds the
 * disk disagrees). Best effort: a failure is logged (the store is failing
 * anyway, and the operator's restart comes next).
 */
export function renewHistoryId(dir: string, logger: Logger): void {
  try {
    writeHistoryIdFile(dir, newHistoryId());
  } catch (err) {
    logger.warn({ err, dataDir: dir }, 'could not give the store a new history id');
  }
}

/** After a clean close whose last fdatasync covered every change (modes other than always): the file is clean again. */
export function closeHistoryId(dir: string, id: string, mode: FsyncMode): void {
  if (mode !== 'always') writeHistoryIdFile(dir, id);
}
