/** kvctl restore into a directory it cannot use, or onto a full disk: one line naming it, exit 2, nothing left behind. */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { KvClient } from '@kv/client';
import { mountSmallDisk, testWithSmallDisk } from '../support/disk-faults';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let scratch: string;
let backupFile: string;

beforeAll(async () => {
  server = await startServer();
  const kv = new KvClient(server.address);
  try {
    // Some 400 KiB of values: more than the small disk below holds.
    for (let i = 0; i < 100; i++) await kv.set(`big/${i}`, 'x'.repeat(4096));
  } finally {
    kv.close();
  }
  scratch = makeTempDir('kvctl-restore-target-');
  backupFile = path.join(scratch, 'b.bak');
  const backup = await runKvctl(['backup', backupFile], { env: { KV_ENDPOINTS: server.address } });
  expect(backup.code).toBe(0);
}, 60_000);

afterAll(async () => {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function expectOneLine(result: KvctlResult, code: number, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/unexpected failure/);
}

test('a --data-dir that cannot be made (under /proc) is a usage error naming it, not an unexpected failure', async () => {
  const result = await runKvctl(['restore', backupFile, '--data-dir', '/proc/foo']);
  expectOneLine(result, 2, /^kvctl: --data-dir \/proc\/foo cannot be used: .*; nothing was restored\n$/);
});

test('an empty --data-dir (an unset shell variable) is a usage error, not a restore into the current directory', async () => {
  const cwd = makeTempDir('kv-restore-cwd-');
  const result = await runKvctl(['restore', backupFile, '--data-dir', ''], { cwd });
  expectOneLine(result, 2, /^kvctl: --data-dir: the directory name is empty; nothing was restored\n$/);
  expect(readdirSync(cwd)).toEqual([]);
});

testWithSmallDisk()('a full disk (ENOSPC) is one line saying so, exit 2, and the new directory is removed', async () => {
  const disk = mountSmallDisk(64 * 1024);
  try {
    const target = path.join(disk.dir, 'restored');
    const result = await runKvctl(['restore', backupFile, '--data-dir', target]);
    expectOneLine(result, 2, /^kvctl: --data-dir .*restored: no space left on its disk \(ENOSPC\).*; nothing was restored\n$/);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(disk.dir)).toEqual([]);
  } finally {
    disk.unmount();
  }
});
