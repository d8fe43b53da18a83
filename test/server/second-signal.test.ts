/**
 * A second signal (more than a second after the first) stops at once: exit
 * 1, one line saying so and what that means for the data, and under
 * --workers the workers and the store owner go with the supervisor.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { KvClient } from '@kv/client';
import { callNeverFinished } from '../support/raw-http2';
import { clusterChildren, isAlive, killCluster, type RunningServer, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

const running: RunningServer[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await killCluster(server);
});

async function serve(args: string[], dataDir?: string): Promise<RunningServer> {
  const server = await startServer({ dataDir, args, env: { KV_LOG_LEVEL: 'info' } });
  running.push(server);
  return server;
}

async function drainStarted(server: RunningServer): Promise<number> {
  await pollUntil('the drain to start', () => (server.output().includes('shutting down') ? true : undefined));
  return Date.now();
}

/** A repeat of the signal within a second of the first is taken for npm's echo of Ctrl-C (main.ts), so a second one must come later. */
async function pastTheEchoWindow(since: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, since + 1100 - Date.now())));
}

/** SIGTERM, and SIGTERM again once the drain has started (and the first signal's echo has passed): how the process exits. */
async function signalTwice(server: RunningServer): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await pastTheEchoWindow(await drainStarted(server));
  server.child.kill('SIGTERM');
  return exited;
}

test('a second signal stops at once, exit 1, with one line saying so; acknowledged writes are all there on the next start', async () => {
  const server = await serve(['--shutdown-grace-ms', '60000']);
  const kv = new KvClient(server.address);
  const revision = await kv.set('kept', { acknowledged: true });
  kv.close();
  const connection = await callNeverFinished(server.address, '/kv.v1.KeyValueService/Set');
  expect(await signalTwice(server)).toBe(1);
  const lines = server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('kv-server: '));
  expect(lines).toEqual([
    'kv-server: SIGTERM again: stopping now, without the drain: calls in flight are cut off (a write among them may or may not ' +
      "have been applied); every acknowledged write is on disk (--fsync always); the data directory's lock is removed as the process exits",
  ]);
  // As the line says: the process took its lock away as it exited.
  expect(existsSync(path.join(server.dataDir, 'LOCK'))).toBe(false);
  connection.close();

  const again = await serve([], server.dataDir);
  const kv2 = new KvClient(again.address);
  expect(await kv2.get('kept')).toMatchObject({ value: { acknowledged: true }, modRevision: revision });
  kv2.close();
});

test('under --workers a second signal to the supervisor ends the workers and the store owner too', async () => {
  const server = await serve(['--workers', '2', '--shutdown-grace-ms', '60000']);
  const children = clusterChildren(server.child.pid!);
  expect(children).toHaveLength(3);
  const connection = await callNeverFinished(server.address, '/kv.v1.KeyValueService/Set');
  expect(await signalTwice(server)).toBe(1);
  const lines = server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('kv-server: '));
  expect(lines).toEqual([
    'kv-server: SIGTERM again: stopping now, without the drain: calls in flight are cut off (a write among them may or may not ' +
      "have been applied); every acknowledged write is on disk (--fsync always); the store owner is killed, so the data directory's " +
      'lock is left behind, and the next start takes it over',
  ]);
  await pollUntil('the workers and the store owner to be gone', () => (children.some(({ pid }) => isAlive(pid)) ? undefined : true));
  connection.close();
  // Killed, as the line says: the store owner did not close the store and release the directory on its own.
  expect(existsSync(path.join(server.dataDir, 'LOCK'))).toBe(true);
  const again = await serve([], server.dataDir);
  expect(await again.stop()).toBe(0);
});

test('SIGTERM repeated while the server exits gracefully never ends it by the signal: it exits 0', async () => {
  // Node restores a signal's default action as it tears the process down after a natural exit: a SIGTERM landing then
  // killed the server (exit by the signal) instead of the documented exit. Repeats within a second of the first signal
  // are npm's echo (ignored), so each server here is sent SIGTERM again and again, through its whole exit, within that second.
  for (let round = 0; round < 5; round++) {
    const server = await serve([]);
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      server.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    let exited = false;
    void exit.then(() => (exited = true));
    const first = Date.now();
    server.child.kill('SIGTERM');
    while (!exited && Date.now() - first < 900) {
      try {
        process.kill(server.child.pid!, 'SIGTERM');
      } catch {
        break; // gone
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('stopped; data directory released');
  }
});
