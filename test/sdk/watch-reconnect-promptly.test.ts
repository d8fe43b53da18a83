/**
 * A watch whose server went away waits between attempts to resume (a backoff
 * that doubles up to 2 s), but not past the moment its connection changes
 * state: a server that is back is resumed on at once, as reads and
 * keep-alives do, not at the end of the backoff.
 */
import { KvClient, type KvWatchEvent } from '@kv/client';
import { startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

test('a watch resumes as soon as a restarted server is back, not at the end of a backoff grown while it was down', async () => {
  const dataDir = makeTempDir();
  let server = await startServer({ dataDir });
  const address = server.address;
  const client = new KvClient(address);
  const events: KvWatchEvent[] = [];
  const watch = client.watch({ prefix: 'p/' });
  const reading = (async () => {
    for await (const event of watch) events.push(event);
  })();
  try {
    await pollUntil(
      'the watch to hear a write',
      async () => (await client.set('p/before', 1), events.length > 0 ? true : undefined),
      10_000,
    );
    await server.kill();
    // Down long enough for the attempts' backoff to reach its 2 s ceiling (50, 100, 200, ... ms).
    await new Promise((resolve) => setTimeout(resolve, 3500));
    server = await startServer({ dataDir, args: ['--listen', address] });
    // A read retries until the client's connection is back (its wait ends when the connection changes state):
    // from then on the watch, waiting on the same connection, must not lag behind by what is left of its backoff.
    await client.get('p/before');
    const backAt = Date.now();
    const revision = await client.set('p/after', 2);
    await pollUntil(
      'the write after the restart, through the resumed watch',
      () => (events.some((event) => event.revision === revision) ? true : undefined),
      Math.max(0, 500 - (Date.now() - backAt)),
    );
    expect(events.map((event) => event.key)).toEqual(['p/before', 'p/after']);
  } finally {
    watch.close();
    await reading.catch(() => undefined);
    client.close();
    await server.stop();
  }
}, 30_000);
