/**
 * Names of the files in a data directory. Logs and snapshots share one
 * sequence number so that sorting by it gives the replay order:
 *   wal-<16-digit seq>.log     a log (records appended as writes happen)
 *   snap-<16-digit seq>.snap   a snapshot (the live set written by compaction)
 *   *.tmp                      a snapshot being written; never read
 *   LOCK (with LOCK/OWNER), LOCK.stale-*   the directory lock (see data-dir-lock.ts)
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileKind } from './record-codec';

export interface DataFile {
  seq: number;
  kind: FileKind;
  name: string;
}

const dataFileName = /^(wal|snap)-(\d{16})\.(log|snap)$/;

export function logFileName(seq: number): string {
  return `wal-${String(seq).padStart(16, '0')}.log`;
}

export function snapshotFileName(seq: number): string {
  return `snap-${String(seq).padStart(16, '0')}.snap`;
}

/** Lists data files in sequence order, and the leftover temp files. */
export function listDataDir(dir: string): { files: DataFile[]; temps: string[] } {
  const files: DataFile[] = [];
  const temps: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('.tmp')) {
      temps.push(name);
      continue;
    }
    const m = dataFileName.exec(name);
    if (!m || (m[1] === 'wal') !== (m[3] === 'log')) continue;
    files.push({ seq: Number(m[2]), kind: m[1] === 'wal' ? FileKind.Log : FileKind.Snapshot, name });
  }
  files.sort((a, b) => a.seq - b.seq);
  return { files, temps };
}

/** Makes renames, creations and deletions in `dir` durable (Linux needs an fsync of the directory). */
export function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function dataFilePath(dir: string, name: string): string {
  return path.join(dir, name);
}

/**
 * Creates the data directory and its missing parents. Not fs.mkdirSync's
 * recursive mode: where mkdir answers ENOENT though the parent exists (in
 * procfs, /proc/self/nope), Node retries the parent and the child forever,
 * synchronously, and the process spins at full CPU deaf to every signal.
 */
export function makeDataDir(dir: string): void {
  const missing: string[] = [];
  const target = path.resolve(dir);
  for (let at = target; ;) {
    if (fs.existsSync(at)) break;
    const parent = path.dirname(at);
    missing.push(at);
    if (parent === at) break;
    at = parent;
  }
  for (const each of missing.reverse()) {
    try {
      // The directory itself only its owner may enter, as etcd's (it holds every value); its parents as the umask says.
      fs.mkdirSync(each, each === target ? 0o700 : undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if (!fs.statSync(dir).isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir, syscall: 'mkdir' });
  }
}
