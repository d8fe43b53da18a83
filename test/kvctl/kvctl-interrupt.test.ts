/**
 * Ctrl-C (SIGINT) and SIGTERM as the exit code table says: kvctl ends by
 * the signal (a shell reports 130, 143). backup and restore first remove
 * what they had written (an older backup file stays as it was, a data
 * directory as restore found it); watch and lease keepalive, which run
 * until stopped, end the same way (watch --count N ends with 0).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { KvClient } from '@kv/client';
import { startKvctl as startKvctlProcess } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

/** About 100 MB: a backup or restore of it is still writing well after the first MB is on disk. */
const BIG_VALUES = 110;
const BIG_VALUE_CHARS = 900_000;
const FIRST_BYTES = 1024 * 1024;
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

let server: RunningServer;
let kv: KvClient;
let scratch: string;
let bigBackup: string;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
  for (let i = 0; i < BIG_VALUES; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => kv.set(`big/${String(i + j).padStart(3, '0')}`, 'x'.repeat(BIG_VALUE_CHARS))));
  }
  scratch = makeTempDir('kvctl-interrupt-');
  bigBackup = path.join(scratch, 'big.backup');
  await kv.backup(bigBackup);
}, 120_000);

afterAll(async () => {
  kv.close();
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

interface Running {
  stdout(): string;
  stderr(): string;
  /** The exit status as a shell reports it: the code, or 128 + the signal's number for a process the signal ended. */
  status: Promise<number>;
  kill(signal: NodeJS.Signals): void;
}

function startKvctl(args: string[]): Running {
  const { child, stdout, stderr, ended } = startKvctlProcess(args, { KV_ENDPOINTS: server.address });
  const status = ended.then(({ code, signal }) => code ?? 128 + constants.signals[signal as NodeJS.Signals]);
  return { stdout, stderr, status, kill: (signal) => child.kill(signal) };
}

const shellStatus = (signal: NodeJS.Signals): number => 128 + constants.signals[signal];

/** True once a file in `dir` whose name matches holds `bytes`; undefined until then. */
function grown(dir: string, name: RegExp, bytes: number): true | undefined {
  const file = existsSync(dir) ? readdirSync(dir).find((each) => name.test(each)) : undefined;
  const size = file === undefined ? 0 : (statSync(path.join(dir, file), { throwIfNoEntry: false })?.size ?? 0);
  return size >= bytes ? true : undefined;
}

test.each(SIGNALS)(
  '%s during backup FILE removes the unfinished file, leaves the older FILE as it was, one line, then kvctl ends by the signal',
  async (signal) => {
    const dir = makeTempDir('kvctl-interrupt-backup-');
    try {
      const file = path.join(dir, 'keep.backup');
      writeFileSync(file, 'the older backup');
      chmodSync(file, 0o600);
      const backup = startKvctl(['backup', file]);
      try {
        await pollUntil('the backup to be part written', () => grown(dir, /^keep\.backup\.partial-\d+$/, FIRST_BYTES), 60_000);
        backup.kill(signal);
        expect(await backup.status).toBe(shellStatus(signal));
      } finally {
        backup.kill('SIGKILL');
      }
      expect({ stdout: backup.stdout(), stderr: backup.stderr() }).toEqual({
        stdout: '',
        stderr: `kvctl: interrupted (${signal}); no backup was written\n`,
      });
      expect(readdirSync(dir)).toEqual(['keep.backup']);
      expect(readFileSync(file, 'utf8')).toBe('the older backup');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  120_000,
);

test.each(SIGNALS)(
  '%s during restore removes what it wrote: a directory it made is gone, an empty one it was given is empty again',
  async (signal) => {
    const dir = makeTempDir('kvctl-interrupt-restore-');
    try {
      for (const given of [false, true]) {
        const target = path.join(dir, given ? 'given' : 'made');
        if (given) mkdirSync(target);
        const restore = startKvctl(['restore', bigBackup, '--data-dir', target]);
        try {
          await pollUntil('the restore to be part written', () => grown(target, /\.tmp$/, FIRST_BYTES), 60_000);
          restore.kill(signal);
          expect(await restore.status).toBe(shellStatus(signal));
        } finally {
          restore.kill('SIGKILL');
        }
        expect({ stdout: restore.stdout(), stderr: restore.stderr() }).toEqual({
          stdout: '',
          stderr: `kvctl: interrupted (${signal}); nothing was restored\n`,
        });
        expect(given ? readdirSync(target) : existsSync(target)).toEqual(given ? [] : false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  120_000,
);

test.each(SIGNALS)(
  '%s ends a watch: the events seen are printed, then kvctl ends by the signal',
  async (signal) => {
    const watch = startKvctl(['watch', `w/${signal}`]);
    try {
      // Until the watch has started, a set may come before it: set until one is seen.
      await pollUntil(
        'the watch to print an event',
        async () => {
          if (watch.stdout().includes(`"key":"w/${signal}"`)) return true;
          await kv.set(`w/${signal}`, 1);
          await new Promise((resolve) => setTimeout(resolve, 100));
          return undefined;
        },
        60_000,
      );
      watch.kill(signal);
      expect(await watch.status).toBe(shellStatus(signal));
    } finally {
      watch.kill('SIGKILL');
    }
    expect(watch.stderr()).toBe('');
    expect(watch.stdout()).toMatch(new RegExp(`^(\\{"type":"put","key":"w/${signal}"[^\\n]*\\}\\n)+$`));
  },
  120_000,
);

test.each(SIGNALS)(
  '%s ends lease keepalive: kvctl ends by the signal',
  async (signal) => {
    const ttlMs = 12_000;
    const lease = await kv.grantLease(ttlMs);
    const grantedAt = Date.now();
    const keepalive = startKvctl(['lease', 'keepalive', String(lease.id)]);
    try {
      // Past half its time to live with more than half left: it was kept alive, so kvctl listens for the signal.
      await pollUntil(
        'the lease to be kept alive',
        async () =>
          Date.now() - grantedAt > ttlMs / 2 && ((await kv.leaseInfo(lease.id))?.remainingMs ?? 0) > ttlMs / 2 ? true : undefined,
        60_000,
      );
      keepalive.kill(signal);
      expect(await keepalive.status).toBe(shellStatus(signal));
    } finally {
      keepalive.kill('SIGKILL');
    }
    expect({ stdout: keepalive.stdout(), stderr: keepalive.stderr() }).toEqual({ stdout: '', stderr: '' });
  },
  120_000,
);
