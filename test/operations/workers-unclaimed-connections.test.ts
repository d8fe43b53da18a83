/**
 * kv-server --workers 2: a connection the supervisor dealt to a worker that
 * died before it took it (killed while stopped, or while too busy to read
 * its channel) is closed, so its client connects again and is served; it is
 * not left open with nobody to read it, its calls waiting out their
 * deadlines for as long as the client keeps it.
 */
import { KvClient } from '@kv/client';
import { type RunningServer, clusterChildren, killCluster, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

jest.setTimeout(60_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

test('a connection dealt to a worker killed before it took it is closed; its client connects again and is served', async () => {
  server = await startServer({ args: ['--workers', '2'] });
  const [stopped] = clusterChildren(server.child.pid as number)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid);
  process.kill(stopped, 'SIGSTOP');
  // A channel each. The supervisor deals a worker its next connection once it has taken the last: the stopped worker
  // gets one of these connections, the other worker the rest.
  open = Array.from({ length: 3 }, (_, i) => new KvClient(server!.address, { channelOptions: { 'grpc.kv_test_channel': i } }));
  const outcomes: string[] = [];
  const reads = open.map((kv) =>
    kv.get('k', { deadlineMs: 20_000 }).then(
      () => void outcomes.push('answered'),
      (error: unknown) => void outcomes.push(String(error)),
    ),
  );
  await pollUntil('the reads through the running worker', () => (outcomes.length === 2 ? true : undefined));
  expect(outcomes).toEqual(['answered', 'answered']);

  process.kill(stopped, 'SIGKILL');
  // Well within its deadline: the connection is closed once the worker is gone, and the read retried on another.
  await pollUntil('the read whose connection went to the killed worker', () => (outcomes.length === 3 ? true : undefined), 10_000);
  await Promise.all(reads);
  expect(outcomes).toEqual(['answered', 'answered', 'answered']);
});
