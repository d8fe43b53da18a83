/**
 * One process owns a data directory. proper-lockfile holds `<dir>/LOCK` (an
 * atomically created directory whose mtime it refreshes; older than `stale`
 * means the owner is gone), and `<dir>/OWNER` records the owner's pid so a
 * restart right after a crash need not wait out the staleness:
 *   - owner pid not alive (kill(pid, 0) says ESRCH): take the lock over now;
 *   - owner pid alive (another process, or another store in this process):
 *     LockedError naming the directory and pid;
 *   - pid unreadable (the owner died between creating LOCK and OWNER): wait
 *     until the lock goes stale, then take it over.
 * The pid recorded may be our own after a restart in a fresh container
 * (pid 1 again); a per-process registry tells that apart from a second store
 * opened in this same process.
 */
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Logger } from '../../logger';
import { LockedError } from '../errors';

export interface DataDirLock {
  release(): Promise<void>;
}

const STALE_MS = 10_000;
const heldInThisProcess = new Set<string>();

export async function lockDataDir(dir: string, logger: Logger): Promise<DataDirLock> {
  const realDir = fs.realpathSync(dir);
  const lockPath = path.join(realDir, 'LOCK');
  const ownerPath = path.join(realDir, 'OWNER');
  if (heldInThisProcess.has(realDir)) throw lockedError(dir, process.pid);
  // Claimed before the first await so two opens in this process cannot race each other.
  heldInThisProcess.add(realDir);
  try {
    return await acquire(realDir, dir, lockPath, ownerPath, logger);
  } catch (err) {
    heldInThisProcess.delete(realDir);
    throw err;
  }
}

async function acquire(
  realDir: string,
  dir: string,
  lockPath: string,
  ownerPath: string,
  logger: Logger,
): Promise<DataDirLock> {

  const options = {
    lockfilePath: lockPath,
    stale: STALE_MS,
    realpath: false,
    onCompromised: (err: Error) => {
      // The default throws from a timer and kills the process; the lock being
      // lost (e.g. LOCK removed by hand) is worth an error log, not a crash.
      logger.error({ err, dir: realDir }, 'data directory lock compromised');
    },
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(realDir, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const pid = readOwnerPid(ownerPath);
    const owner = pid === undefined ? 'unknown' : ownerState(pid);
    if (owner === 'alive') throw lockedError(dir, pid as number);
    if (owner === 'gone') {
      logger.warn({ dir: realDir, pid }, 'taking over the lock of a data directory whose owner process is gone');
      fs.rmSync(lockPath, { recursive: true, force: true });
      release = await lockOrExplain(realDir, options, dir, ownerPath, 0);
    } else {
      logger.warn({ dir: realDir }, 'data directory lock has no readable owner; waiting for it to go stale');
      release = await lockOrExplain(realDir, options, dir, ownerPath, STALE_MS + 5_000);
    }
  }
  try {
    const tmp = `${ownerPath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${process.pid}\n`);
    fs.renameSync(tmp, ownerPath);
  } catch (err) {
    await release();
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      heldInThisProcess.delete(realDir);
      fs.rmSync(ownerPath, { force: true });
      await release().catch((err: unknown) => logger.warn({ err, dir: realDir }, 'releasing the data directory lock failed'));
    },
  };
}

async function lockOrExplain(
  realDir: string,
  options: lockfile.LockOptions,
  dir: string,
  ownerPath: string,
  waitMs: number,
): Promise<() => Promise<void>> {
  try {
    return await lockfile.lock(realDir, {
      ...options,
      retries: waitMs === 0 ? 0 : { retries: Math.ceil(waitMs / 500), factor: 1, minTimeout: 500, maxTimeout: 500 },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    throw lockedError(dir, readOwnerPid(ownerPath));
  }
}

function readOwnerPid(ownerPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(ownerPath, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function ownerState(pid: number): 'alive' | 'gone' | 'unknown' {
  // Our own pid here, with no store of ours holding the lock, is a previous incarnation.
  if (pid === process.pid) return 'gone';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'gone';
    if (code === 'EPERM') return 'alive';
    return 'unknown';
  }
}

function lockedError(dir: string, pid: number | undefined): LockedError {
  return new LockedError(`data directory ${dir} is in use by another process (pid ${pid ?? 'unknown'})`);
}
