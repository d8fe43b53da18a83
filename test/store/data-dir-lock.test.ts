import { type ChildProcessByStdio, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import pino from 'pino';
import { silentLogger } from '../../src/logger';
import { LockedError } from '../../src/store/errors';
import {
  LockNotReleasedError,
  type OwnerRecord,
  formatOwner,
  lockDataDir,
  processStartTime,
  readOwner,
} from '../../src/store/file/data-dir-lock';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

const children: ChildProcessByStdio<Writable, Readable, null>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const hasProc = processStartTime(process.pid) !== undefined && fs.existsSync('/proc/self/ns/pid');

interface Child {
  proc: ChildProcessByStdio<Writable, Readable, null>;
  /** JSON lines printed so far (after "ready"). */
  results(): Array<{ won?: boolean; pid?: number; code?: string; message?: string }>;
  ready(): boolean;
  exited: Promise<unknown>;
}

function startChild(dataDir: string, staleMs?: number): Child {
  const args = ['--import', 'tsx', path.join(__dirname, 'data-dir-lock-child.ts'), dataDir];
  if (staleMs !== undefined) args.push(String(staleMs));
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    proc,
    exited,
    ready: () => out.split('\n').includes('ready'),
    results: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { won?: boolean; pid?: number; code?: string; message?: string }),
  };
}

function me(): OwnerRecord {
  return {
    pid: process.pid,
    host: 'test-host',
    boot: fs.existsSync('/proc/sys/kernel/random/boot_id') ? fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() : undefined,
    pidns: fs.existsSync('/proc/self/ns/pid') ? fs.readlinkSync('/proc/self/ns/pid') : undefined,
    start: processStartTime(process.pid),
    instance: 'f'.repeat(32),
  };
}

/** A LOCK as another process would have left it: LOCK/OWNER with `owner`, LOCK's mtime `mtime`. */
function plantLock(dataDir: string, owner: OwnerRecord | string | undefined, mtime = new Date()): string {
  const lock = path.join(dataDir, 'LOCK');
  fs.mkdirSync(lock);
  if (owner !== undefined) fs.writeFileSync(path.join(lock, 'OWNER'), typeof owner === 'string' ? owner : formatOwner(owner));
  fs.utimesSync(lock, mtime, mtime);
  return lock;
}

/** A data file that must survive every takeover untouched. */
function plantDataFile(dataDir: string): { check(): void } {
  const file = path.join(dataDir, 'wal-0000000000000001.log');
  const bytes = Buffer.from('not really a log, but nobody may touch it');
  fs.writeFileSync(file, bytes);
  return {
    check() {
      expect(fs.readFileSync(file)).toEqual(bytes);
    },
  };
}

function leftovers(dataDir: string): string[] {
  return fs.readdirSync(dataDir).filter((n) => n.startsWith('LOCK.'));
}

describe('data directory lock: takeover race', () => {
  test("two processes racing for a dead owner's lock: exactly one wins, every round", async () => {
    const dataDir = dirs.make();
    const data = plantDataFile(dataDir);
    // The first dead owner: a holder killed with SIGKILL.
    const first = startChild(dataDir, 2_000);
    await pollUntil('the first child to start', () => (first.ready() ? true : undefined), 20_000);
    first.proc.stdin.write('go\n');
    await pollUntil('the first child to lock', () => (first.results().length > 0 ? true : undefined), 20_000);
    expect(first.results()[0]).toMatchObject({ won: true });
    first.proc.kill('SIGKILL');
    await first.exited;

    for (let round = 0; round < 10; round++) {
      const racers = [startChild(dataDir, 2_000), startChild(dataDir, 2_000)];
      await pollUntil('both racers to start', () => (racers.every((r) => r.ready()) ? true : undefined), 20_000);
      for (const r of racers) r.proc.stdin.write('go\n');
      const results = await pollUntil(
        'both racers to report',
        () => (racers.every((r) => r.results().length > 0) ? racers.map((r) => r.results()[0]) : undefined),
        20_000,
      );
      const winners = results.filter((r) => r?.won === true);
      expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
      const winner = winners[0] as { pid: number };
      const loser = results.find((r) => r?.won !== true);
      expect(loser).toEqual({
        code: 'LOCKED',
        message: `data directory ${dataDir} is in use by another process (pid ${winner.pid})`,
      });
      expect(readOwner(path.join(dataDir, 'LOCK', 'OWNER'))?.pid).toBe(winner.pid);
      // The winner dies too: the next round races for its lock.
      for (const r of racers) r.proc.kill('SIGKILL');
      await Promise.all(racers.map((r) => r.exited));
    }
    data.check();
    expect(leftovers(dataDir)).toEqual([]);
  });

  test("a SIGKILLed owner's lock is taken over at once (not after the staleness wait), without deleting files", async () => {
    const dataDir = dirs.make();
    const data = plantDataFile(dataDir);
    const holder = startChild(dataDir);
    await pollUntil('the child to start', () => (holder.ready() ? true : undefined), 20_000);
    holder.proc.stdin.write('go\n');
    await pollUntil('the child to lock', () => (holder.results().length > 0 ? true : undefined), 20_000);
    holder.proc.kill('SIGKILL');
    await holder.exited;
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(true);
    const started = Date.now();
    const lock = await lockDataDir(dataDir, silentLogger);
    expect(Date.now() - started).toBeLessThan(5_000);
    data.check();
    await lock.release();
    expect(fs.readdirSync(dataDir)).toEqual(['wal-0000000000000001.log']);
  });
});

describe('data directory lock: who the recorded owner is', () => {
  test('our own pid recorded by a process in another pid namespace (two containers, both pid 1), LOCK refreshed: LockedError, no waiting out staleness', async () => {
    const dataDir = dirs.make();
    const lockPath = plantLock(dataDir, { ...me(), host: 'other-container', pidns: 'pid:[1]', start: '1' });
    // The other container's proper-lockfile keeps LOCK fresh.
    const refresh = setInterval(() => fs.utimesSync(lockPath, new Date(), new Date()), 100);
    try {
      const started = Date.now();
      const err = await lockDataDir(dataDir, silentLogger, { staleMs: 3_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockedError);
      expect((err as Error).message).toBe(`data directory ${dataDir} is in use by another process (pid ${process.pid})`);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      clearInterval(refresh);
    }
    expect(readOwner(path.join(lockPath, 'OWNER'))?.host).toBe('other-container');
  });

  test('our own pid recorded, LOCK older than the stale threshold: taken over, files kept', async () => {
    const dataDir = dirs.make();
    const data = plantDataFile(dataDir);
    plantLock(dataDir, { ...me(), host: 'other-container', pidns: 'pid:[1]' }, new Date(Date.now() - 60_000));
    const lock = await lockDataDir(dataDir, silentLogger, { staleMs: 3_000 });
    const owner = readOwner(path.join(dataDir, 'LOCK', 'OWNER'));
    expect(owner).toMatchObject({ pid: process.pid, pidns: me().pidns, start: me().start });
    expect(owner?.instance).not.toBe(me().instance);
    data.check();
    expect(leftovers(dataDir)).toEqual([]);
    await lock.release();
  });

  (hasProc ? test : test.skip)(
    'our own pid recorded in our pid namespace with another start time (restart in the same container): taken over at once',
    async () => {
      const dataDir = dirs.make();
      plantLock(dataDir, { ...me(), start: '1' });
      const started = Date.now();
      const lock = await lockDataDir(dataDir, silentLogger);
      expect(Date.now() - started).toBeLessThan(2_000);
      await lock.release();
    },
  );

  (hasProc ? test : test.skip)('a live pid with another start time (the pid was reused): taken over at once', async () => {
    const dataDir = dirs.make();
    plantLock(dataDir, { ...me(), pid: process.ppid, start: '1' });
    const lock = await lockDataDir(dataDir, silentLogger);
    expect(readOwner(path.join(dataDir, 'LOCK', 'OWNER'))?.pid).toBe(process.pid);
    await lock.release();
  });

  (hasProc ? test : test.skip)('a live pid with its own start time: LockedError at once', async () => {
    const dataDir = dirs.make();
    plantLock(dataDir, { ...me(), pid: process.ppid, start: processStartTime(process.ppid) });
    await expect(lockDataDir(dataDir, silentLogger)).rejects.toThrow(
      `data directory ${dataDir} is in use by another process (pid ${process.ppid})`,
    );
  });

  test('a partial OWNER (cannot tell): waits until LOCK is stale, then takes it over', async () => {
    const dataDir = dirs.make();
    plantLock(dataDir, `${process.ppid}\nhost=x\n`);
    const started = Date.now();
    const lock = await lockDataDir(dataDir, silentLogger, { staleMs: 2_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    await lock.release();
  });

  test('the data directory removed while its lock is awaited: ENOENT at once, not a loop that spins and ignores a stop', async () => {
    const dataDir = dirs.make();
    plantLock(dataDir, `${process.ppid}\nhost=x\n`);
    const locking = lockDataDir(dataDir, silentLogger, { staleMs: 60_000 }).catch((e: unknown) => e);
    fs.rmSync(dataDir, { recursive: true, force: true });
    const spinning = new Promise((resolve) => setTimeout(() => resolve('still trying after 5 s'), 5_000).unref());
    await expect(Promise.race([locking, spinning])).resolves.toMatchObject({
      code: 'ENOENT',
      syscall: 'mkdir',
      path: path.join(dataDir, 'LOCK'),
    });
  });

  (fs.existsSync('/proc/1') ? test : test.skip)('a directory that cannot hold LOCK (/proc/1): ENOENT at once', async () => {
    const locking = lockDataDir('/proc/1', silentLogger).catch((e: unknown) => e);
    const spinning = new Promise((resolve) => setTimeout(() => resolve('still trying after 5 s'), 5_000).unref());
    await expect(Promise.race([locking, spinning])).resolves.toMatchObject({ code: 'ENOENT' });
  });

  test('a LOCK with no owner whose mtime was set in the future (never stale): refused, saying so and what to do', async () => {
    const dataDir = dirs.make();
    const future = new Date('2100-01-01T00:00:00Z');
    const lockPath = plantLock(dataDir, undefined, future);
    const err = await lockDataDir(dataDir, silentLogger, { staleMs: 2_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toBe(
      `data directory ${dataDir} is locked by ${lockPath}, which names no owner and was not refreshed for 7 s, but whose ` +
        `modification time is in the future (2100-01-01T00:00:00.000Z), so it never goes stale: if no kv-server uses ${dataDir}, remove ${lockPath}`,
    );
    expect(fs.statSync(lockPath).mtime).toEqual(future);
  });
});

/** Field 3 of /proc/<pid>/stat (R, S, Z...), or undefined once the process is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * The lock child under a parent that does not reap it: perl forks and execs
 * the child, then blocks reading fd 3 and only calls waitpid once that pipe
 * is closed. Until then a SIGKILLed child stays a zombie.
 */
function startChildUnderNonReapingParent(dataDir: string): Omit<Child, 'proc'> & { go(): void; reap(): void } {
  const parentScript = [
    'my $pid = fork() // die "fork: $!";',
    'if ($pid == 0) { exec @ARGV or die "exec: $!" }',
    'open(my $ctl, "<&=", 3) or die "fd 3: $!";',
    '<$ctl>;',
    'waitpid($pid, 0);',
  ].join(' ');
  const args = ['-e', parentScript, process.execPath, '--import', 'tsx', path.join(__dirname, 'data-dir-lock-child.ts'), dataDir];
  const proc = spawn('perl', args, { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
  const stdin = proc.stdio[0] as Writable;
  const stdout = proc.stdio[1] as Readable;
  const control = proc.stdio[3] as Writable;
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    exited,
    ready: () => out.split('\n').includes('ready'),
    results: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { won?: boolean; pid?: number; code?: string; message?: string }),
    go: () => stdin.write('go\n'),
    reap: () => control.end(),
  };
}

describe('data directory lock: a SIGKILLed owner not yet reaped', () => {
  (hasProc ? test : test.skip)(
    'an owner that is a zombie (its parent has not reaped it) is dead: its lock is taken over at once',
    async () => {
      const dataDir = dirs.make();
      const data = plantDataFile(dataDir);
      const holder = startChildUnderNonReapingParent(dataDir);
      try {
        await pollUntil('the child to start', () => (holder.ready() ? true : undefined), 20_000);
        holder.go();
        const won = await pollUntil('the child to lock', () => holder.results()[0], 20_000);
        expect(won).toMatchObject({ won: true });
        const pid = won.pid as number;
        process.kill(pid, 'SIGKILL');
        await pollUntil('the killed child to be a zombie', () => (procState(pid) === 'Z' ? true : undefined), 10_000);

        const started = Date.now();
        const lock = await lockDataDir(dataDir, silentLogger);
        expect(Date.now() - started).toBeLessThan(5_000); // not by waiting out the staleness of LOCK
        expect(procState(pid)).toBe('Z'); // still unreaped when it was judged
        expect(readOwner(path.join(dataDir, 'LOCK', 'OWNER'))?.pid).toBe(process.pid);
        data.check();
        await lock.release();
      } finally {
        holder.reap();
        await holder.exited;
      }
    },
  );
});

describe('data directory lock: in this process', () => {
  test('a second open in the same process is told so; release frees the directory', async () => {
    const dataDir = dirs.make();
    const lock = await lockDataDir(dataDir, silentLogger);
    const err = await lockDataDir(dataDir, silentLogger).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toBe(`data directory ${dataDir} is already open in this process`);
    await lock.release();
    await lock.release(); // twice is harmless
    expect(fs.readdirSync(dataDir)).toEqual([]);
    const again = await lockDataDir(dataDir, silentLogger);
    await again.release();
  });
});

describe('data directory lock: compromised', () => {
  const fast = { staleMs: 2_000, updateMs: 1_000 };

  test('LOCK removed under us: onCompromised fires, and release leaves the directory alone and says the lock was lost', async () => {
    const dataDir = dirs.make();
    const seen: Error[] = [];
    const lock = await lockDataDir(dataDir, silentLogger, { ...fast, onCompromised: (e) => seen.push(e) });
    expect(lock.compromised).toBeUndefined();
    fs.rmSync(path.join(dataDir, 'LOCK'), { recursive: true });
    await pollUntil('onCompromised', () => (seen.length > 0 ? true : undefined), 10_000);
    expect(seen).toHaveLength(1);
    expect(lock.compromised).toBe(seen[0]);
    const err = await lock.release().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockNotReleasedError);
    const lockPath = path.join(fs.realpathSync(dataDir), 'LOCK');
    expect(seen[0].message).toBe(`${lockPath} was removed by another process while this server held it`);
    expect((err as Error).message).toBe(
      `the lock on data directory ${dataDir} was lost while it was open: ${seen[0].message}; ${lockPath} was not touched: ` +
        `make sure no other kv-server uses ${dataDir} before starting one on it`,
    );
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
    await lock.release(); // reported once; twice is harmless
  });

  test("LOCK replaced by another owner's: onCompromised fires; release keeps the new owner's LOCK", async () => {
    const dataDir = dirs.make();
    const seen: Error[] = [];
    const lock = await lockDataDir(dataDir, silentLogger, { ...fast, onCompromised: (e) => seen.push(e) });
    fs.rmSync(path.join(dataDir, 'LOCK'), { recursive: true });
    const other = { ...me(), host: 'elsewhere', instance: 'a'.repeat(32) };
    plantLock(dataDir, other);
    await pollUntil('onCompromised', () => (seen.length > 0 ? true : undefined), 10_000);
    expect(seen[0].message).toBe(
      `${path.join(fs.realpathSync(dataDir), 'LOCK')} was replaced by another lock (of pid ${other.pid} on elsewhere) while this server held it`,
    );
    await expect(lock.release()).rejects.toBeInstanceOf(LockNotReleasedError);
    expect(readOwner(path.join(dataDir, 'LOCK', 'OWNER'))).toEqual(other);
  });

  test.each([
    ['far in the past', new Date('2000-01-01T00:00:00Z')],
    ['far in the future', new Date('2100-01-01T00:00:00Z')],
  ])('LOCK’s mtime set %s by someone else: the loss says so in kv’s words, naming LOCK and the time', async (_, when) => {
    const dataDir = dirs.make();
    const seen: Error[] = [];
    const lock = await lockDataDir(dataDir, silentLogger, { ...fast, onCompromised: (e) => seen.push(e) });
    const lockPath = path.join(fs.realpathSync(dataDir), 'LOCK');
    fs.utimesSync(lockPath, when, when);
    await pollUntil('onCompromised', () => (seen.length > 0 ? true : undefined), 10_000);
    expect(seen[0].message).toBe(
      `the modification time of ${lockPath} was changed (to ${when.toISOString()}) by another process while this server held it`,
    );
    expect(seen[0].message).not.toContain('stale threshold');
    await expect(lock.release()).rejects.toThrow(`was lost while it was open: ${seen[0].message}; `);
  });

  test('LOCK replaced by a file: the loss says so; release leaves the file', async () => {
    const dataDir = dirs.make();
    const seen: Error[] = [];
    const lock = await lockDataDir(dataDir, silentLogger, { ...fast, onCompromised: (e) => seen.push(e) });
    const lockPath = path.join(fs.realpathSync(dataDir), 'LOCK');
    fs.rmSync(lockPath, { recursive: true });
    fs.writeFileSync(lockPath, 'x');
    await pollUntil('onCompromised', () => (seen.length > 0 ? true : undefined), 10_000);
    expect(seen[0].message).toBe(`${lockPath} was replaced by a file while this server held it`);
    await expect(lock.release()).rejects.toBeInstanceOf(LockNotReleasedError);
    expect(fs.readFileSync(lockPath, 'utf8')).toBe('x');
  });

  test('without a callback the loss is logged as an error', async () => {
    const dataDir = dirs.make();
    const logged: string[] = [];
    const logger = pino({ level: 'error' }, { write: (s: string) => logged.push(s) });
    const lock = await lockDataDir(dataDir, logger, fast);
    fs.rmSync(path.join(dataDir, 'LOCK'), { recursive: true });
    const line = await pollUntil('an error log', () => logged.find((l) => l.includes('lost the data directory lock')), 10_000);
    const lockPath = path.join(fs.realpathSync(dataDir), 'LOCK');
    // What happened, to which path, and what to do: no proper-lockfile words, no stack.
    const { hostname: _hostname, pid: _pid, time: _time, ...fields } = JSON.parse(line) as Record<string, unknown>;
    expect(fields).toEqual({
      level: 50,
      dir: fs.realpathSync(dataDir),
      msg:
        `lost the data directory lock: ${lockPath} was removed by another process while this server held it; writes are refused ` +
        `from now on: make sure no other kv-server uses ${dataDir}, then restart this one`,
    });
    await expect(lock.release()).rejects.toBeInstanceOf(LockNotReleasedError);
  });
});

describe('data directory lock: release', () => {
  test('LOCK that cannot be removed: release says so, and that the next start takes it over once stale', async () => {
    const dataDir = dirs.make();
    const lock = await lockDataDir(dataDir, silentLogger, { staleMs: 4_000 });
    // Something dropped into LOCK: rmdir fails with ENOTEMPTY after OWNER is gone.
    fs.writeFileSync(path.join(dataDir, 'LOCK', 'stray'), '');
    const err = await lock.release().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockNotReleasedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^could not remove ${path.join(fs.realpathSync(dataDir), 'LOCK')}: ENOTEMPTY.*; the next start takes it over once it is 4000 ms old$`,
      ),
    );
  });
});
