/**
 * What a stopping server says about its data directory: "released" only when
 * LOCK is gone; otherwise one line on stderr saying what happened, exit 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

test('a clean stop that cannot remove LOCK says so in one line and exits 1, never "released"', async () => {
  const server = await startServer({ env: { KV_LOG_LEVEL: 'info' } });
  // Something dropped into LOCK: removing it (rmdir) fails with ENOTEMPTY.
  fs.writeFileSync(path.join(server.dataDir, 'LOCK', 'stray'), '');
  expect(await server.stop()).toBe(1);
  const lines = server.output().trim().split('\n');
  expect(server.output()).not.toContain('data directory released');
  const report = lines.filter((l) => l.startsWith('kv-server: '));
  expect(report).toEqual([
    expect.stringMatching(
      new RegExp(
        `^kv-server: stopped, but could not remove ${fs.realpathSync(server.dataDir)}/LOCK: ENOTEMPTY.*; the next start takes it over once it is 10000 ms old$`,
      ),
    ),
  ]);
  expect(server.output()).not.toMatch(/\n\s+at /);
  expect(fs.existsSync(path.join(server.dataDir, 'LOCK'))).toBe(true);
});

test('a stop after the lock was lost says the lock was lost and exits 1', async () => {
  const server = await startServer({ env: { KV_LOG_LEVEL: 'info' } });
  fs.rmSync(path.join(server.dataDir, 'LOCK'), { recursive: true, force: true });
  await pollUntil(
    'the server to notice the lost lock',
    () => (server.output().includes('lost the data directory lock') ? true : undefined),
    30_000,
  );
  expect(await server.stop()).toBe(1);
  expect(server.output()).not.toContain('data directory released');
  const lockPath = path.join(fs.realpathSync(server.dataDir), 'LOCK');
  expect(
    server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('kv-server: ')),
  ).toEqual([
    `kv-server: stopped, but the lock on data directory ${server.dataDir} was lost while it was open: ${lockPath} was removed by another ` +
      `process while this server held it; ${lockPath} was not touched: make sure no other kv-server uses ${server.dataDir} before starting one on it`,
  ]);
  // In kv's words, without proper-lockfile's or a stack, in the log too.
  expect(server.output()).not.toMatch(/ECOMPROMISED.*stack|stale threshold|\n\s+at /);
});

test('a clean stop that removes LOCK says the directory was released and exits 0', async () => {
  const server = await startServer({ env: { KV_LOG_LEVEL: 'info' } });
  expect(await server.stop()).toBe(0);
  expect(server.output()).toContain('stopped; data directory released');
  expect(fs.readdirSync(server.dataDir)).not.toContain('LOCK');
});
