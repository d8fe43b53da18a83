/**
 * One process owns a data directory. proper-lockfile holds `<dir>/LOCK` (an
 * atomically created directory whose mtime it refreshes every `updateMs`;
 * not refreshed for `staleMs` means the owner is gone). Right after creating
 * LOCK, and before proper-lockfile starts refreshing it, the owner writes
 * `<dir>/LOCK/OWNER` (temp file + link, never replacing): pid, hostname, boot id, pid
 * namespace, process start time and a random instance id. Because OWNER lives
 * inside LOCK it is removed with it: it can never be mistaken for a previous
 * owner's record.
 *
 * When LOCK exists, the recorded owner decides, and only what can be proved:
 *   - same boot and pid namespace (or, without /proc, same host) and the pid
 *     is not alive, a zombie (killed, not yet reaped by its parent), or alive
 *     with another start time (pid reused): gone, take the lock over now;
 *   - same boot and pid namespace, pid alive with the recorded start time:
 *     LockedError naming the directory and pid;
 *   - anything else (OWNER missing or partial, our own pid in another or
 *     unknown pid namespace — two containers sharing a volume are both pid 1
 *     —, another host, no /proc): fall back to the mtime. Stale: take it over.
 *     Refreshed while we watch (its owner is alive): LockedError. Neither:
 *     poll until one of them happens (at most staleMs + 5 s).
 *
 * Taking over is a claim, never a blind delete: LOCK is renamed to a unique
 * `LOCK.stale-<pid>-<random>`, and only if the renamed directory is the very
 * one judged (same inode, mtime and OWNER instance) is it removed and a new
 * LOCK created. A process that renamed something else (another process took
 * the lock over meanwhile) renames it straight back and starts again, so two
 * servers starting together after a crash cannot both win. proper-lockfile's
 * own stale removal (stat then rmdir, which has the same race) is disabled.
 *
 * A second open of the directory in this process is refused by a
 * per-process registry ("already open in this process").
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Logger } from '../../logger';
import { LockedError } from '../errors';
import { namingFile } from './io-error-path';

export interface DataDirLock {
  /** Set once the lock was lost while held (LOCK removed, replaced or its mtime changed); the directory is no longer ours. */
  readonly compromised: LockLostError | undefined;
  /** Removes LOCK; rejects with LockNotReleasedError if it cannot, or if the lock had been lost. Idempotent. */
  release(): Promise<void>;
}

/**
 * release() could not give the directory back: LOCK could not be removed, or
 * had already been lost while held. The message says which, and what the next
 * start will find.
 */
export class LockNotReleasedError extends Error {
  readonly code = 'LOCK_NOT_RELEASED';
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'LockNotReleasedError';
  }
}

/**
 * The lock was lost while held, noticed at a refresh: its message says, in kv's words, what happened to
 * LOCK (removed, replaced by a file or another lock, its mtime changed by someone else, or it could no
 * longer be refreshed). proper-lockfile's own error ("Unable to update lock within the stale threshold")
 * is the cause.
 */
export class LockLostError extends Error {
  /** proper-lockfile's code for it; an E-code, so that the store's log line gives it without a stack (withBriefIoErrors). */
  readonly code = 'ECOMPROMISED';
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'LockLostError';
  }
}

export interface DataDirLockOptions {
  /**
   * Called once if the lock is lost while held (proper-lockfile notices at its
   * next refresh that LOCK is gone or not ours). The store should refuse
   * writes from then on. Without it, the loss is only logged.
   */
  onCompromised?: (err: LockLostError) => void;
  /** A LOCK not refreshed for this long is stale. Default 10 000; at least 2 000. */
  staleMs?: number;
  /** How often LOCK is refreshed (and checked for loss). Default staleMs / 2; between 1 000 and staleMs / 2. */
  updateMs?: number;
  /** Stops waiting for a lock whose owner cannot be checked (rejects with the signal's reason). */
  signal?: AbortSignal;
  /**
   * The process to signal to stop the one that holds the lock, when not that one itself (a supervisor's, whose
   * children ignore signals of their own): recorded with the lock, and named when another process is refused it.
   */
  stopPid?: number;
}

/** The owner record in LOCK/OWNER. Fields are undefined where the platform cannot tell them. */
export interface OwnerRecord {
  pid: number;
  host: string;
  boot: string | undefined;
  pidns: string | undefined;
  start: string | undefined;
  /** DataDirLockOptions.stopPid. */
  stopPid?: number;
  instance: string;
}

const DEFAULT_STALE_MS = 10_000;
const POLL_MS = 50;
const heldInThisProcess = new Set<string>();

export async function lockDataDir(dir: string, logger: Logger, options: DataDirLockOptions = {}): Promise<DataDirLock> {
  const realDir = fs.realpathSync(dir);
  if (heldInThisProcess.has(realDir)) throw new LockedError(`data directory ${dir} is already open in this process`);
  // Claimed before the first await so two opens in this process cannot race each other.
  heldInThisProcess.add(realDir);
  try {
    return await acquire(realDir, dir, logger, options);
  } catch (err) {
    heldInThisProcess.delete(realDir);
    throw err;
  }
}

interface Judged {
  dev: number;
  ino: number;
  mtimeMs: number;
  instance: string | undefined;
}

async function acquire(realDir: string, dir: string, logger: Logger, options: DataDirLockOptions): Promise<DataDirLock> {
  const staleMs = Math.max(options.staleMs ?? DEFAULT_STALE_MS, 2_000);
  const lockPath = path.join(realDir, 'LOCK');
  const ownerPath = path.join(lockPath, 'OWNER');
  const me: OwnerRecord = { ...selfIdentity(), stopPid: options.stopPid, instance: crypto.randomBytes(16).toString('hex') };

  const state = { acquired: false, released: false, compromised: undefined as LockLostError | undefined };
  const lockOptions: lockfile.LockOptions = {
    lockfilePath: lockPath,
    stale: staleMs,
    update: options.updateMs,
    realpath: false,
    retries: 0,
    fs: lockFs(lockPath, ownerPath, me, state),
    onCompromised: (err: Error) => {
      // proper-lockfile's default throws from a timer and kills the process.
      if (state.released) return;
      const lost = new LockLostError(whatHappenedToLock(lockPath, ownerPath, me.instance, staleMs, err), err);
      state.compromised = lost;
      // What happened and what to do, without proper-lockfile's words or a stack.
      logger.error(
        { dir: realDir },
        `lost the data directory lock: ${lost.message}; writes are refused from now on: make sure no other kv-server uses ${dir}, then restart this one`,
      );
      try {
        options.onCompromised?.(lost);
      } catch (cbErr) {
        logger.error({ err: cbErr, dir: realDir }, 'onCompromised callback failed');
      }
    },
  };

  let release: (() => Promise<void>) | undefined;
  // What we are watching while we cannot tell whether the owner lives.
  let watch: { dev: number; ino: number; mtimeMs: number; deadline: number } | undefined;
  let warned = false;
  while (release === undefined) {
    options.signal?.throwIfAborted();
    const st = statOrUndefined(lockPath);
    if (st === undefined) {
      release = await tryLock(realDir, lockOptions);
      continue;
    }
    const owner = readOwner(ownerPath);
    const judged: Judged = { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, instance: owner?.instance };
    const verdict = owner === undefined ? 'unknown' : ownerState(owner, me);
    if (verdict === 'alive') throw lockedError(dir, owner);
    let reason: string | undefined;
    if (verdict === 'gone') {
      reason = 'its owner process is gone';
    } else if (st.mtimeMs < Date.now() - staleMs) {
      reason = `it was not refreshed for ${staleMs} ms`;
    } else {
      if (watch === undefined || watch.dev !== st.dev || watch.ino !== st.ino) {
        watch = { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, deadline: Date.now() + staleMs + 5_000 };
      } else if (watch.mtimeMs !== st.mtimeMs && owner !== undefined) {
        // Refreshed while we watched: its owner is alive.
        throw lockedError(dir, owner);
      }
      if (Date.now() > watch.deadline) {
        // Not refreshed all this time, yet not stale: its mtime is in the future (set by hand, or a clock far off).
        if (owner === undefined && watch.mtimeMs === st.mtimeMs && st.mtimeMs > Date.now()) {
          throw new LockedError(
            `data directory ${dir} is locked by ${lockPath}, which names no owner and was not refreshed for ${Math.round((staleMs + 5_000) / 1000)} s, ` +
              `but whose modification time is in the future (${st.mtime.toISOString()}), so it never goes stale: if no kv-server uses ${dir}, remove ${lockPath}`,
          );
        }
        throw lockedError(dir, owner);
      }
      if (!warned) {
        warned = true;
        logger.warn(
          { dir: realDir, owner },
          'data directory is locked by a process that cannot be checked; waiting to see it refresh the lock or let it go stale',
        );
      }
      await delay(POLL_MS);
      options.signal?.throwIfAborted();
      continue;
    }
    if (claim(lockPath, ownerPath, judged, logger)) {
      logger.warn({ dir: realDir, owner }, `took over the lock of a data directory: ${reason}`);
      watch = undefined;
      release = await tryLock(realDir, lockOptions);
    }
  }
  state.acquired = true;
  removeLegacyOwnerFile(realDir);
  const releaseLock = release;
  return {
    get compromised() {
      return state.compromised;
    },
    async release() {
      if (state.released) return;
      state.released = true;
      heldInThisProcess.delete(realDir);
      if (state.compromised !== undefined) {
        // LOCK is not ours any more: leave it alone, and do not let the caller believe it gave the directory back.
        throw new LockNotReleasedError(
          `the lock on data directory ${dir} was lost while it was open: ${state.compromised.message}; ${lockPath} was not touched: make sure no other kv-server uses ${dir} before starting one on it`,
          state.compromised,
        );
      }
      try {
        removeOwnFile(ownerPath, me.instance);
        await releaseLock();
      } catch (err) {
        const next =
          readOwner(ownerPath)?.instance === me.instance
            ? 'the next start takes it over at once, as this process will be gone'
            : `the next start takes it over once it is ${staleMs} ms old`;
        throw new LockNotReleasedError(`could not remove ${lockPath}: ${(err as Error).message}; ${next}`, err);
      }
    },
  };
}

/**
 * One attempt at proper-lockfile's mkdir; undefined if someone else holds LOCK (or took it away mid-way).
 * LOCK's own mkdir failing with ENOENT is no race: the data directory is gone (removed while the lock was
 * awaited) or cannot hold a directory (/proc): thrown, as trying again would only spin.
 */
async function tryLock(realDir: string, options: lockfile.LockOptions): Promise<(() => Promise<void>) | undefined> {
  try {
    return await lockfile.lock(realDir, options);
  } catch (err) {
    const { code, syscall, path: where } = err as NodeJS.ErrnoException;
    if (code === 'ENOENT' && syscall === 'mkdir' && where === options.lockfilePath) throw err;
    if (code === 'ELOCKED' || code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Claims a LOCK judged stale or dead by renaming it to a unique name. True
 * only if what was renamed is exactly what was judged; anything else is put
 * back (it is a live lock someone took meanwhile) and the caller starts over.
 */
function claim(lockPath: string, ownerPath: string, judged: Judged, logger: Logger): boolean {
  const claimed = `${lockPath}.stale-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  try {
    fs.renameSync(lockPath, claimed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false; // another process claimed it first
    throw err;
  }
  const st = fs.statSync(claimed);
  const owner = readOwner(path.join(claimed, path.basename(ownerPath)));
  if (st.dev === judged.dev && st.ino === judged.ino && st.mtimeMs === judged.mtimeMs && owner?.instance === judged.instance) {
    fs.rmSync(claimed, { recursive: true, force: true });
    return true;
  }
  try {
    fs.renameSync(claimed, lockPath);
  } catch (err) {
    // Only if yet another process created LOCK in the microseconds between: the holder of the lock we
    // renamed finds it compromised at its next refresh.
    logger.error({ err, lockPath }, 'could not put back a data directory lock renamed by mistake');
    fs.rmSync(claimed, { recursive: true, force: true });
  }
  return false;
}

/**
 * The fs proper-lockfile uses: its mkdir of LOCK also writes LOCK/OWNER
 * (before proper-lockfile reads the mtime it will keep refreshing), and its
 * rmdir refuses while acquiring, which disables its racy stale-lock removal.
 */
function lockFs(lockPath: string, ownerPath: string, me: OwnerRecord, state: { acquired: boolean }): Record<string, unknown> {
  return {
    ...fs,
    mkdir(p: string, cb: (err: NodeJS.ErrnoException | null) => void) {
      fs.mkdir(p, (err) => {
        if (err || p !== lockPath) return cb(err);
        const made = statOrUndefined(p);
        if (made === undefined) return cb(Object.assign(new Error('LOCK vanished right after mkdir'), { code: 'ENOENT' }));
        writeOwner(p, ownerPath, me, made.ino).then(
          () => cb(null),
          (werr: NodeJS.ErrnoException) => {
            // Not left behind half made (it would only go stale), unless it is no longer the one we made.
            if (statOrUndefined(p)?.ino === made.ino) fs.rmSync(p, { recursive: true, force: true });
            cb(werr);
          },
        );
      });
    },
    rmdir(p: string, cb: (err: NodeJS.ErrnoException | null) => void) {
      if (p === lockPath && !state.acquired) {
        return cb(Object.assign(new Error('stale lock removal is done by data-dir-lock'), { code: 'ELOCKED' }));
      }
      fs.rmdir(p, cb);
    },
    rmdirSync(p: string) {
      // proper-lockfile's exit hook: release a lock still held when the process exits.
      if (p === lockPath) removeOwnFile(ownerPath, me.instance);
      fs.rmdirSync(p);
    },
  };
}

/**
 * Writes OWNER into the LOCK we just created. A racing claimant may have
 * renamed LOCK away for a moment (it puts it back at once), so ENOENT is
 * retried briefly as long as LOCK is still the directory we created.
 *
 * OWNER is published with link(2), which never replaces an existing file:
 * if a claimant's rename-back put another owner's LOCK where ours was (a
 * rename onto an empty directory succeeds), its OWNER is already there and
 * we fail with ELOCKED instead of adopting a lock that is not ours.
 */
async function writeOwner(lockPath: string, ownerPath: string, me: OwnerRecord, ino: number): Promise<void> {
  const deadline = Date.now() + 500;
  for (;;) {
    const tmp = `${ownerPath}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      // Its write names no file if it fails (a full disk): the message must.
      namingFile(tmp, () => fs.writeFileSync(tmp, formatOwner(me), { flag: 'wx' }));
      try {
        fs.linkSync(tmp, ownerPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw Object.assign(new Error('LOCK already has an owner'), { code: 'ELOCKED' });
        }
        throw err;
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      if (fs.statSync(lockPath).ino === ino) return;
      throw Object.assign(new Error('LOCK was replaced while being created'), { code: 'ENOENT' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() > deadline) throw err;
      const st = statOrUndefined(lockPath);
      if (st !== undefined && st.ino !== ino) throw err;
      await delay(5);
    }
  }
}

export function formatOwner(o: OwnerRecord): string {
  // The pid stays alone on the first line for people and scripts; `instance` is written last so a
  // truncated file is recognisably incomplete.
  return [
    `${o.pid}`,
    `host=${o.host}`,
    `boot=${o.boot ?? '-'}`,
    `pidns=${o.pidns ?? '-'}`,
    `start=${o.start ?? '-'}`,
    ...(o.stopPid === undefined ? [] : [`stop=${o.stopPid}`]),
    `instance=${o.instance}`,
    '',
  ].join('\n');
}

/** The record, or undefined if OWNER is missing, partial or not ours to understand ("cannot tell"). */
export function readOwner(ownerPath: string): OwnerRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(ownerPath, 'utf8');
  } catch {
    return undefined;
  }
  if (!text.endsWith('\n')) return undefined;
  const [first, ...rest] = text.slice(0, -1).split('\n');
  if (!/^[1-9]\d*$/.test(first ?? '')) return undefined;
  const fields = new Map<string, string>();
  for (const line of rest) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const get = (k: string): string | undefined => {
    const v = fields.get(k);
    return v === undefined || v === '-' || v === '' ? undefined : v;
  };
  const instance = get('instance');
  const host = fields.get('host');
  if (instance === undefined || host === undefined) return undefined;
  const stop = get('stop');
  const stopPid = stop !== undefined && /^[1-9]\d*$/.test(stop) ? Number(stop) : undefined;
  return { pid: Number(first), host, boot: get('boot'), pidns: get('pidns'), start: get('start'), stopPid, instance };
}

function selfIdentity(): Omit<OwnerRecord, 'instance'> {
  let boot: string | undefined;
  let pidns: string | undefined;
  try {
    boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    pidns = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    boot = undefined;
    pidns = undefined;
  }
  return { pid: process.pid, host: os.hostname(), boot, pidns, start: processStartTime(process.pid) };
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; undefined where there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.start;
}

/**
 * Fields 3 (state: R, S, D, Z, X...) and 22 (start time) of /proc/<pid>/stat;
 * undefined where there is no /proc or no such process.
 */
function procStat(pid: number): { state: string | undefined; start: string | undefined } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses; fields 3.. follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return { state: fields[0], start: start !== undefined && /^\d+$/.test(start) ? start : undefined };
}

/**
 * 'gone' and 'alive' only when provable; 'unknown' sends the caller to the
 * mtime. A pid means something only in the pid namespace it was recorded in.
 */
export function ownerState(owner: OwnerRecord, me: Omit<OwnerRecord, 'instance'>): 'alive' | 'gone' | 'unknown' {
  const samePidSpace =
    me.boot !== undefined && me.pidns !== undefined
      ? owner.boot === me.boot && owner.pidns === me.pidns
      : owner.boot === undefined && owner.pidns === undefined && owner.host === me.host;
  if (!samePidSpace) return 'unknown';
  if (owner.pid === me.pid) {
    // Our pid: a previous process that had it (a restart in the same pid namespace) if its start
    // time differs from ours; otherwise nothing can be proved (the registry says it is not us).
    return owner.start !== undefined && me.start !== undefined && owner.start !== me.start ? 'gone' : 'unknown';
  }
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return 'gone';
    if (code !== 'EPERM') return 'unknown';
  }
  const stat = procStat(owner.pid);
  // A SIGKILLed owner whose parent has not reaped it yet still answers kill(pid, 0): a zombie (Z), or
  // one being reaped (X), holds no files and runs no code, so it is dead.
  if (stat?.state === 'Z' || stat?.state === 'X') return 'gone';
  if (owner.start !== undefined && stat?.start !== undefined && stat.start !== owner.start) return 'gone'; // pid reused
  return 'alive';
}

/** Removes LOCK/OWNER if it is still ours (never another owner's). */
function removeOwnFile(ownerPath: string, instance: string): void {
  if (readOwner(ownerPath)?.instance === instance) fs.rmSync(ownerPath, { force: true });
}

/** Earlier versions kept the pid in `<dir>/OWNER`; left there, an old binary would trust it against our LOCK. */
function removeLegacyOwnerFile(realDir: string): void {
  fs.rmSync(path.join(realDir, 'OWNER'), { force: true });
}

/**
 * What became of LOCK, which proper-lockfile found not ours any more at a refresh (`err`, its words): in kv's
 * words, for the operator. Looked at now, so it says what is there now.
 */
function whatHappenedToLock(lockPath: string, ownerPath: string, instance: string, staleMs: number, err: Error): string {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(lockPath);
  } catch (statErr) {
    if ((statErr as NodeJS.ErrnoException).code === 'ENOENT') return `${lockPath} was removed by another process while this server held it`;
    return `${lockPath} could not be checked while this server held it (${(statErr as Error).message})`;
  }
  if (!st.isDirectory()) return `${lockPath} was replaced by a file while this server held it`;
  const owner = readOwner(ownerPath);
  if (owner?.instance !== instance) {
    const whose = owner === undefined ? '' : ` (of pid ${owner.pid} on ${owner.host})`;
    return `${lockPath} was replaced by another lock${whose} while this server held it`;
  }
  // Still ours: either refreshing it failed for longer than the stale threshold, or someone else set its mtime.
  if ((err as NodeJS.ErrnoException).syscall !== undefined) {
    return `${lockPath} could not be refreshed for ${staleMs} ms (${err.message}), so another server may take it over`;
  }
  return `the modification time of ${lockPath} was changed (to ${st.mtime.toISOString()}) by another process while this server held it`;
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function lockedError(dir: string, owner: OwnerRecord | undefined): LockedError {
  const stop = owner?.stopPid === undefined ? '' : `, one process of the server whose pid is ${owner.stopPid}: stop that one`;
  return new LockedError(`data directory ${dir} is in use by another process (pid ${owner?.pid ?? 'unknown'}${stop})`);
}
