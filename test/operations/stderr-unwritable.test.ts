/**
 * A server whose stderr cannot be written (a log file on a full disk, here
 * /dev/full, where every write fails ENOSPC) keeps serving: its log lines
 * are dropped, not thrown from the call that logs them. Before, the first
 * line logged ("store opened") killed the server at start, and a disk error
 * the store heals from killed it when its line could not be written.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { KvClient } from '@kv/client';
import { REPO_ROOT } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

test('with stderr on a full disk the server starts, serves, logs a failing call, and stops with exit 0', async () => {
  const dir = makeTempDir('kv-stderr-full-');
  const full = openSync('/dev/full', 'w');
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'dist/main.js'), '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--log-level', 'debug'],
    { stdio: ['ignore', 'pipe', full] },
  );
  closeSync(full);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let kv: KvClient | undefined;
  try {
    const address = await pollUntil('the ready line', () => /listening on (127\.0\.0\.1:\d+)/.exec(stdout)?.[1], 20_000);
    kv = new KvClient(address);
    for (let i = 0; i < 50; i++) await kv.set(`k/${i}`, { i, pad: 'x'.repeat(200) });
    // Refused calls are logged too (at debug), each line failing ENOSPC.
    await expect(kv.set('', 1)).rejects.toMatchObject({ reason: 'INVALID_KEY' });
    expect((await kv.get('k/49'))?.value).toEqual({ i: 49, pad: 'x'.repeat(200) });
    expect(child.exitCode).toBeNull();
  } finally {
    kv?.close();
    child.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
});
