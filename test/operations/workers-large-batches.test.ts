/**
 * kv-server --workers 2 under writes larger than its watch history: the
 * owner's feed to its workers must carry every committed change however big
 * a commit batch is, so the workers keep serving and every write is answered.
 */
import { KvClient } from '@kv/client';
import { clusterChildren, startServer, type RunningServer, killCluster } from '../support/server-process';

jest.setTimeout(120_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

test('a burst of writes larger than --watch-history-bytes is answered in full and every worker keeps serving', async () => {
  server = await startServer({ args: ['--workers', '2', '--watch-history-bytes', '8000000'] });
  const workersBefore = clusterChildren(server.child.pid as number)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid)
    .sort();
  open = Array.from({ length: 4 }, (_, i) => new KvClient(server!.address, { channelOptions: { 'grpc.kv_test_channel': i } }));
  const value = 'y'.repeat(900_000);
  // Enough at once that the owner commits several MB in one batch: more than the workers' feed held before.
  for (let round = 0; round < 3; round++) {
    const outcomes = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => open[i % 4].set(`b/${round}/${i}`, value)));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String((o.reason as { reason?: string }).reason)))).toEqual(
      Array(16).fill('ok'),
    );
  }
  for (const kv of open) expect((await kv.get('b/2/15'))?.value).toBe(value);
  const workersAfter = clusterChildren(server.child.pid as number)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid)
    .sort();
  expect(workersAfter).toEqual(workersBefore);
  expect(server.output()).not.toMatch(/older than the change history kept|a worker process ended/);
});
