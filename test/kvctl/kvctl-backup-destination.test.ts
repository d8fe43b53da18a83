/**
 * kvctl backup to a file it cannot write: one line and exit 2 before the
 * server is asked for anything, never a stack trace (an unwritable path
 * crashed on the stream's unhandled cancellation), and nothing left behind.
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let scratch: string;

beforeAll(async () => {
  server = await startServer();
  scratch = makeTempDir('kvctl-backup-');
});

afterAll(async () => {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: server.address } });

test.each([
  ['a missing directory', () => path.join(scratch, 'no-such-dir', 'b.backup'), /no such file or directory/],
  ['a directory', () => scratch, /is a directory/],
  ['no name at all', () => '', /no backup file named/],
])('backup to %s: one line, exit 2, nothing written', async (_what, target, pattern) => {
  const result = await kvctl(['backup', target()]);
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: cannot write backup file [^\n]+; no backup was written\n$/);
  expect(result.stderr).toMatch(pattern);
  expect(readdirSync(scratch)).toEqual([]);
});
