/**
 * The SDK's watch learns how long a silence means a broken stream from the
 * progress interval the server gives in a stream's first message (twice
 * it, and a second): with a long --watch-progress-ms an idle watch is not cut and resumed
 * every 10 s, and with a short one a stopped server is noticed sooner.
 */
import { KvClient, type WatchResumeChange } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

/** Consumes a watch of an idle prefix, telling what onResume reports, until closed. */
function idleWatch(kv: KvClient, told: WatchResumeChange[]): { watch: ReturnType<KvClient['watch']>; done: Promise<unknown> } {
  const watch = kv.watch({ prefix: 'idle/', onResume: (change) => told.push(change) });
  const done = (async () => {
    for await (const _ of watch) {
      // nothing is written under idle/
    }
  })().catch((error: unknown) => error);
  return { watch, done };
}

test('a server whose progress comes every 6 s: an idle watch keeps its stream past 10 s; one every 0.6 s: a stopped server is noticed within seconds', async () => {
  const servers: RunningServer[] = [];
  const clients: KvClient[] = [];
  try {
    const [slow, fast] = await Promise.all([
      startServer({ args: ['--watch-progress-ms', '6000'] }),
      startServer({ args: ['--watch-progress-ms', '600'] }),
    ]);
    servers.push(slow, fast);
    const onSlow = new KvClient(slow.address);
    const onFast = new KvClient(fast.address);
    clients.push(onSlow, onFast);
    const slowTold: WatchResumeChange[] = [];
    const fastTold: WatchResumeChange[] = [];
    const slowWatch = idleWatch(onSlow, slowTold);
    const fastWatch = idleWatch(onFast, fastTold);
    // Both streams answered (a watch from now gets its first message at once).
    await onSlow.set('other', 1);
    await onFast.set('other', 1);
    const started = Date.now();
    fast.child.kill('SIGSTOP');
    // Twice 0.6 s and a second: lost well before the 10 s assumed without the server's word.
    await pollUntil('the stopped server to be noticed', () => (fastTold.some((c) => c.state === 'lost') ? true : undefined), 6000);
    fast.child.kill('SIGCONT');
    // 11 s in all: past the 10 s an idle watch of the slow server was cut at before; 13 s is its learnt limit.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 11_000 - (Date.now() - started))));
    expect(slowTold).toEqual([]);
    expect(slowWatch.watch.reconnectCount).toBe(0);
    slowWatch.watch.close();
    fastWatch.watch.close();
    await Promise.all([slowWatch.done, fastWatch.done]);
  } finally {
    for (const server of servers) server.child.kill('SIGCONT');
    for (const kv of clients) kv.close();
    await Promise.all(servers.map((server) => server.stop()));
  }
}, 40_000);
