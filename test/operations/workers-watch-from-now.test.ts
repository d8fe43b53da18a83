/**
 * kv-server --workers 2: a Watch without a start revision gives the changes
 * committed after it started (kv.proto), whichever worker serves it: never a
 * write acknowledged, through another worker, before the watch began.
 */
import { KvClient, type KvWatchEvent } from '@kv/client';
import { type RunningServer, startServer, killCluster } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

jest.setTimeout(180_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

test('a watch from now on one worker never starts with a write acknowledged through the other before it began', async () => {
  server = await startServer({ args: ['--workers', '2'] });
  open = Array.from({ length: 5 }, (_, i) => new KvClient(server!.address, { channelOptions: { 'grpc.kv_test_channel': i } }));
  // Connected one after the other, so the supervisor deals them to the workers in turn: neighbours are on different workers.
  for (const kv of open) await kv.get('warm-up');
  const [noise, ...clients] = open;
  // Writes of 20 KB all along keep the workers' feeds busy, so a worker's replica is often a little behind the owner.
  let writing = true;
  const noiseDone = (async () => {
    const value = 'n'.repeat(20_000);
    for (let i = 0; writing; i++) await Promise.all(Array.from({ length: 8 }, (_, j) => noise.set(`noise/${j}`, `${value}${i}`)));
  })();
  const replayed: string[] = [];
  // Rounds run in three lanes at once (their own keys): more rounds in the time, on workers busier still.
  const lanes = 3;
  const lane = async (first: number): Promise<void> => {
    for (let i = first; i < 300; i += lanes) {
      const writer = clients[i % clients.length];
      const watcher = clients[(i + 1) % clients.length];
      const key = `k/${i}`;
      const before = await writer.set(key, 'before');
      const watch = watcher.watch({ key });
      const events = watch[Symbol.asyncIterator]();
      const first = events.next();
      // The stream's first message says which revision it starts after.
      await pollUntil('the watch to start', () => (watch.revision > 0 ? true : undefined));
      await writer.set(key, 'after');
      const event = (await first).value as KvWatchEvent;
      const value = event.entry?.value;
      if (value !== 'after') replayed.push(`${key}: ${JSON.stringify(value)} at ${event.revision} (the write answered ${before})`);
      await events.return?.();
    }
  };
  try {
    await Promise.all(Array.from({ length: lanes }, (_, first) => lane(first)));
  } finally {
    writing = false;
    await noiseDone;
  }
  expect(replayed).toEqual([]);
});
