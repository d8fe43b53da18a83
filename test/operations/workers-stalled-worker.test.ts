/**
 * kv-server --workers 2 with one worker stopped (SIGSTOP): the store owner
 * holds a bounded backlog of its feed for that worker, then closes its
 * channel; once the worker runs again it is replaced, and the server goes
 * on serving every write.
 */
import { KvClient } from '@kv/client';
import { MAX_WORKER_BACKLOG_BYTES } from '../../src/store/remote/serve-store-owner';
import { clusterChildren, type RunningServer, startServer, killCluster } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

jest.setTimeout(240_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
let stopped: number | undefined;
afterEach(async () => {
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  stopped = undefined;
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

test('a stopped worker costs the store owner a bounded backlog: its channel is closed, and it is replaced once it runs again', async () => {
  server = await startServer({ args: ['--workers', '2'], env: { KV_LOG_LEVEL: 'info' } });
  const running = server;
  open = Array.from({ length: 4 }, (_, i) => new KvClient(running.address, { channelOptions: { 'grpc.kv_test_channel': i } }));
  for (const kv of open) await kv.get('warm-up');
  const children = clusterChildren(running.child.pid as number);
  stopped = (children.find((c) => c.role === 'worker') as { pid: number }).pid;
  process.kill(stopped, 'SIGSTOP');

  // The clients on the worker that still runs.
  const reached = await Promise.all(
    open.map((kv) =>
      kv.set('probe', 1, { deadlineMs: 3000 }).then(
        () => true,
        () => false,
      ),
    ),
  );
  const writers = open.filter((_, i) => reached[i]);
  expect(writers.length).toBeGreaterThan(0);

  // The owner holds what it cannot send: it cuts the worker off once that passes the bound, not after all is written.
  const value = 'x'.repeat(990_000);
  const cutOff = (): boolean =>
    /does not read the store owner's feed \(stopped or overloaded\): its channel is closed/.test(running.output());
  let written = 0;
  while (!cutOff() && written < 2 * MAX_WORKER_BACKLOG_BYTES) {
    await Promise.all(Array.from({ length: 16 }, (_, i) => writers[i % writers.length].set(`big/${i}`, `${value}${written}`)));
    written += 16 * value.length;
  }
  expect(cutOff()).toBe(true);
  expect(written).toBeGreaterThan(MAX_WORKER_BACKLOG_BYTES - 32 * 1024 * 1024);
  expect(written).toBeLessThan(MAX_WORKER_BACKLOG_BYTES + 64 * 1024 * 1024);
  // The other worker serves on meanwhile.
  await writers[0].set('after', written);

  // Running again, the worker finds its channel closed, ends, and another takes its place.
  process.kill(stopped, 'SIGCONT');
  stopped = undefined;
  await pollUntil('the replacement worker to serve', () => (running.output().includes('worker restarted') ? true : undefined), 60_000);
  const readers = Array.from(
    { length: 4 },
    (_, i) => new KvClient(running.address, { channelOptions: { 'grpc.kv_test_channel': 10 + i } }),
  );
  open.push(...readers);
  for (const kv of readers) expect((await kv.get('after'))?.value).toBe(written);
});
