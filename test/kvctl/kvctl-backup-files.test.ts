/**
 * The files of kvctl backup, restore and import: a backup is its owner's
 * alone (mode 0600, whatever it replaces), a restored directory 0700; a
 * damaged file is reported as damaged before the server is asked anything;
 * `-` (stdin) is refused by restore in one line, as by import.
 */
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, verifyBackupFile } from '@kv/client';
import { KVCTL_SHELL, runCommand, runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let scratch: string;
let backupFile: string;

beforeAll(async () => {
  server = await startServer();
  const kv = new KvClient(server.address);
  try {
    await kv.set('f/1', { n: 1 });
    await kv.set('f/2', 'two');
  } finally {
    kv.close();
  }
  scratch = makeTempDir('kvctl-backup-files-');
  backupFile = path.join(scratch, 'kv.backup');
  expect((await kvctl(['backup', backupFile])).code).toBe(0);
});

afterAll(async () => {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: server.address } });

/** kvctl run by sh under the usual umask 022, which gives a new file 0644. */
const kvctlUnderUmask022 = (line: string): Promise<KvctlResult> =>
  runCommand('sh', ['-c', `umask 022; ${KVCTL_SHELL} ${line}`], { env: { KV_ENDPOINTS: server.address } });

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8);

function expectOneLine(result: KvctlResult, code: number, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

test('a backup is written mode 0600 under umask 022, and a new backup over a 0644 or a 0600 file leaves it 0600', async () => {
  const dir = makeTempDir('kvctl-backup-mode-');
  try {
    const fresh = path.join(dir, 'new.backup');
    expect((await kvctlUnderUmask022(`backup '${fresh}'`)).code).toBe(0);
    expect(modeOf(fresh)).toBe('600');

    for (const mode of [0o644, 0o600]) {
      const existing = path.join(dir, `existing-${mode.toString(8)}.backup`);
      writeFileSync(existing, 'an older backup');
      chmodSync(existing, mode);
      expect((await kvctlUnderUmask022(`backup '${existing}'`)).code).toBe(0);
      expect({ mode: modeOf(existing), keys: verifyBackupFile(existing).keyCount }).toEqual({ mode: '600', keys: 2 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backup - leaves the file the shell made for stdout as the shell made it, holding the backup', async () => {
  const dir = makeTempDir('kvctl-backup-stdout-');
  try {
    const out = path.join(dir, 'out.backup');
    const result = await kvctlUnderUmask022(`backup - > '${out}'`);
    expect(result.code).toBe(0);
    expect(modeOf(out)).toBe('644');
    expect(verifyBackupFile(out).keyCount).toBe(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("restore makes a new data directory 0700, its owner's alone, as the server does", async () => {
  const target = path.join(scratch, 'restored', 'data');
  const result = await kvctl(['restore', backupFile, '--data-dir', target]);
  expect(result.code).toBe(0);
  expect(modeOf(target)).toBe('700');
  rmSync(path.join(scratch, 'restored'), { recursive: true, force: true });
});

test('import of a damaged file into a server that holds keys reports the damage (exit 9), with or without --overwrite', async () => {
  const cut = path.join(scratch, 'cut.backup');
  writeFileSync(cut, readFileSync(backupFile).subarray(0, 40));
  const before = (await kvctl(['get', '--prefix', 'f/'])).stdout;
  for (const args of [[cut], [cut, '--overwrite']]) {
    expectOneLine(await kvctl(['import', ...args]), 9, /^kvctl: [^\n]*cut\.backup is incomplete[^\n]*; nothing was imported\n$/);
  }
  expect((await kvctl(['get', '--prefix', 'f/'])).stdout).toBe(before);
});

test('restore - says in one line that restore needs a regular file (stdin cannot be read twice), as import does: exit 2', async () => {
  const target = path.join(scratch, 'from-stdin');
  for (const [command, consequence] of [
    ['restore', 'nothing was restored'],
    ['import', 'nothing was imported'],
  ]) {
    const args = command === 'restore' ? ['restore', '-', '--data-dir', target] : ['import', '-'];
    const result = await runKvctl(args, { env: { KV_ENDPOINTS: server.address }, input: 'not read' });
    expectOneLine(
      result,
      2,
      new RegExp(
        `^kvctl: cannot read -: standard input cannot be read twice; ${command} reads FILE twice \\(to check it, then to write it\\), ` +
          `so it needs a regular file: save the backup to a file first \\(gunzip a \\.gz first\\); ${consequence}\\n$`,
      ),
    );
    expect(result.stderr).not.toMatch(/ENOENT/);
  }
  expect(existsSync(target)).toBe(false);
});
