/**
 * WatchOptions.startTimeoutMs bounds the wait for the server's first answer
 * only: once the watch has started, a quiet stream may stay quiet for
 * idleTimeoutMs (the server sends progress every --watch-progress-ms), and is
 * not taken for broken after startTimeoutMs.
 */
import { KvClient, type KvWatchEvent, type WatchResumeChange } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer({ args: ['--watch-progress-ms', '3000'] });
  kv = new KvClient(server.address, { deadlineMs: 5000 });
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

test('a started watch with a short startTimeoutMs is not ended by a quiet stream shorter than idleTimeoutMs', async () => {
  const resumes: WatchResumeChange[] = [];
  const watch = kv.watch({ key: 'quiet', startTimeoutMs: 300, idleTimeoutMs: 6000, onResume: (change) => resumes.push(change) });
  const events: KvWatchEvent[] = [];
  const loop = (async () => {
    for await (const event of watch) events.push(event);
  })();
  try {
    // Until the watch has started a set may come before it: set until one is seen.
    await pollUntil('the first event', async () => {
      if (events.length > 0) return true;
      await kv.set('quiet', 1);
      return undefined;
    });
    // Quiet for several times startTimeoutMs, less than the progress interval: the stream must stay as it is.
    const quietUntil = Date.now() + 1500;
    await pollUntil('the quiet spell to pass', () => (Date.now() >= quietUntil ? true : undefined));
    expect(resumes).toEqual([]);
    expect(watch.reconnectCount).toBe(0);
    await kv.set('quiet', 2);
    await pollUntil('the next event', () => (events.some((e) => e.entry?.value === 2) ? true : undefined));
    expect(watch.reconnectCount).toBe(0);
  } finally {
    watch.close();
    await loop;
  }
});
