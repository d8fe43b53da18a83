/**
 * kvctl backup to something that is not a plain file name: a FIFO is
 * written straight through (never replaced by a regular file), a symbolic
 * link keeps being a link (its target gets the atomic replace), and
 * `backup -` writes the backup to stdout, its summary to stderr.
 */
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, verifyBackupFile } from '@kv/client';
import { KVCTL_ARGV, KVCTL_SHELL, kvctlEnv, runCommand, runKvctl, type KvctlResult } from '../support/kvctl-process';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let kv: KvClient;
let scratch: string;
let revision: number;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
  await kv.set('b/1', { n: 1 });
  revision = await kv.set('b/2', 'two');
  scratch = makeTempDir('kvctl-backup-targets-');
});

afterAll(async () => {
  kv.close();
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: server.address } });

test('a FIFO is written straight through and stays a FIFO', async () => {
  const dir = makeTempDir('kvctl-fifo-');
  try {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const copy = path.join(dir, 'copy.backup');
    // The reader, a child process (kvctl's open of the FIFO waits for it); killed if kvctl never writes to the FIFO.
    const reader = spawn('sh', ['-c', 'exec cat "$0" > "$1"', fifo, copy], { stdio: 'ignore' });
    const readerDone = new Promise<number | null>((resolve) => reader.once('close', resolve));
    try {
      const result = await kvctl(['backup', fifo]);
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(result.stdout)).toMatchObject({ file: fifo, revision, keys: 2 });
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(await readerDone).toBe(0);
    } finally {
      reader.kill();
    }
    expect(verifyBackupFile(copy)).toMatchObject({ revision, keyCount: 2 });
    expect(readdirSync(dir).sort()).toEqual(['copy.backup', 'pipe']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a symbolic link to a backup: the target is replaced, the link kept', async () => {
  const target = path.join(scratch, 'real.backup');
  const link = path.join(scratch, 'link.backup');
  writeFileSync(target, 'an old backup');
  symlinkSync('real.backup', link);
  const result = await kvctl(['backup', link]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(readlinkSync(link)).toBe('real.backup');
  expect(verifyBackupFile(target)).toMatchObject({ revision, keyCount: 2 });
  expect(readdirSync(scratch).sort()).toEqual(['link.backup', 'real.backup']);
  rmSync(link);
  rmSync(target);
});

test('a dangling symbolic link: the backup is created at its target, the link kept', async () => {
  const link = path.join(scratch, 'dangling.backup');
  symlinkSync('new.backup', link);
  const result = await kvctl(['backup', link]);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(verifyBackupFile(path.join(scratch, 'new.backup'))).toMatchObject({ revision, keyCount: 2 });
  expect(readdirSync(scratch).sort()).toEqual(['dangling.backup', 'new.backup']);
  rmSync(link);
  rmSync(path.join(scratch, 'new.backup'));
});

test('backup - writes the backup to stdout (a pipe) and the summary to stderr', async () => {
  const out = path.join(scratch, 'piped.backup');
  const result = await runCommand('sh', ['-c', `${KVCTL_SHELL} backup - | cat > '${out}'`], { env: { KV_ENDPOINTS: server.address } });
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 0, stdout: '' });
  expect(JSON.parse(result.stderr)).toMatchObject({ file: '-', revision, keys: 2, bytes: readFileSync(out).length });
  expect(verifyBackupFile(out)).toMatchObject({ revision, keyCount: 2 });
  rmSync(out);
});

test('backup - when the reader goes away early fails instead of exiting 0', async () => {
  // Enough data that writes go on after the reader has gone.
  const big = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 32; i++) await kv.set(`big/${i}`, big);
  try {
    // A reader that takes the first chunk and closes the pipe.
    const direct = spawn(KVCTL_ARGV[0], [...KVCTL_ARGV.slice(1), 'backup', '-'], {
      cwd: REPO_ROOT,
      env: kvctlEnv({ KV_ENDPOINTS: server.address }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    direct.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    direct.stdout.once('data', () => direct.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => direct.once('close', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^kvctl: cannot write the backup to stdout: [^\n]*EPIPE[^\n]*; the backup is incomplete\n$/);
  } finally {
    await kv.clear({ prefix: 'big/' });
  }
});

test('backup - on a terminal is refused: exit 2, one line', async () => {
  const result = await runCommand('script', ['-qec', `${KVCTL_SHELL} backup -`, '/dev/null'], { env: { KV_ENDPOINTS: server.address } });
  expect(result.stdout).toMatch(/^kvctl: backup -: stdout is a terminal; redirect it[^\n]*\r?\n$/);
  expect(result.code).toBe(2);
});
