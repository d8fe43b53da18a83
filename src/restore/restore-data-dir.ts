/**
 * Restore: builds a new data directory for the file engine from a backup
 * file (`kvctl backup`), offline. Two passes over the file: the first checks
 * all of it (every message, the order and revisions of the keys, the
 * trailer's SHA-256) and writes nothing; the second writes it as the
 * engine's own snapshot file, with the engine's own writer, at the backup's
 * revision, checking it all again as it goes. The snapshot is renamed into
 * place only once complete and fsynced, so a directory is either restored
 * whole or left as it was found: never half restored.
 *
 * Keys keep their create and mod revisions, versions and leases; the store
 * revision is the backup's. Leases get their full time to live again, as
 * after a restart. The change history starts at the restored revision:
 * watches from before it are OUT_OF_RANGE. The store gets a new history id,
 * so a watch that resumes on it knows its revisions name other changes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BackupFileReader, type BackupProgress, type BackupSummary, verifyBackupFile } from '@kv/client';
import { type Logger, silentLogger } from '../logger';
import type { StoredEntry } from '../store/change';
import { writeSnapshotFile } from '../store/file/write-checkpoint';
import { dataFilePath, makeDataDir, snapshotFileName, syncDirectory } from '../store/file/data-dir-files';
import { lockDataDir } from '../store/file/data-dir-lock';
import { HISTORY_ID_FILE, newHistoryId, writeHistoryIdFile } from '../store/file/history-id';

/** Which pass a progress report is about. */
export type RestorePhase = 'checking' | 'writing';

export interface RestoreOptions {
  onProgress?: (phase: RestorePhase, progress: BackupProgress) => void;
  logger?: Logger;
  /** Aborted: the restore stops (with the signal's reason) and removes what it wrote. Not seen during the first pass, which does not yield. */
  signal?: AbortSignal;
}

/** A directory that restore may not write into. */
export class RestoreTargetError extends Error {
  readonly code = 'RESTORE_TARGET';
}

/** What an empty volume may hold (ext4 makes it) without being data. */
const IGNORED_ENTRIES = new Set(['lost+found']);

/**
 * Restores `file` into `dataDir`, which must be empty or not exist. Throws
 * RestoreTargetError for a directory in the way, KvError (reason CORRUPT)
 * for a file that is not a complete, intact backup; either way nothing was
 * written.
 */
export async function restoreDataDir(file: string, dataDir: string, options: RestoreOptions = {}): Promise<BackupSummary> {
  const dir = path.resolve(dataDir);
  const created = !fs.existsSync(dir);
  if (!created) checkEmpty(dir);
  const report = options.onProgress ?? (() => undefined);
  verifyBackupFile(file, (progress) => report('checking', progress));
  const signal = options.signal;
  signal?.throwIfAborted();

  makeDataDir(dir);
  // Held while writing, so a server started on the directory meanwhile waits for a complete one.
  let lock: Awaited<ReturnType<typeof lockDataDir>>;
  try {
    lock = await lockDataDir(dir, options.logger ?? silentLogger);
  } catch (error) {
    if (created) fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const name = snapshotFileName(1);
  const partial = dataFilePath(dir, `${name}.tmp`);
  let restored = false;
  try {
    // Checked again since the first pass: between the two a file could change.
    if (!created) checkEmpty(dir, ['LOCK']);
    const reader = new BackupFileReader(file, (progress) => report('writing', progress));
    try {
      const header = reader.header();
      const leases = reader.leases().map(({ id, ttlMs, private: own }) => ({ id, ttlMs, private: own }));
      // Between blocks the writer awaits its writes: a stop asked for meanwhile is seen there.
      await writeSnapshotFile(partial, header.revision, { leases, entries: () => storedEntries(reader) }, () => signal?.throwIfAborted());
      signal?.throwIfAborted();
      const summary = reader.finish();
      // A new history: the restored store gives again the revisions after the backup's, to other changes (history-id.ts).
      writeHistoryIdFile(dir, newHistoryId());
      fs.renameSync(partial, dataFilePath(dir, name));
      syncDirectory(dir);
      restored = true;
      return summary;
    } finally {
      reader.close();
    }
  } finally {
    if (!restored) {
      fs.rmSync(partial, { force: true });
      fs.rmSync(dataFilePath(dir, HISTORY_ID_FILE), { force: true });
    }
    await lock.release();
    if (!restored && created) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function* storedEntries(reader: BackupFileReader): Generator<readonly [string, StoredEntry], void, undefined> {
  for (const entry of reader.entries()) yield [entry.key, entry];
}

function checkEmpty(dir: string, allowed: string[] = []): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    throw new RestoreTargetError(`cannot restore into ${dir}: ${(error as Error).message}`);
  }
  const found = names.filter((name) => !IGNORED_ENTRIES.has(name) && !allowed.includes(name));
  if (found.length > 0) {
    throw new RestoreTargetError(
      `${dir} is not empty (it holds ${found.slice(0, 3).join(', ')}${found.length > 3 ? ', ...' : ''}): restore builds a new data directory; give an empty or new one`,
    );
  }
}
