/**
 * Fills a kv data directory with keys k0..k(N-1), each holding the bench
 * value, by writing through the store's own API in-process (fsync "never",
 * then close, which flushes): ten million keys this way take minutes, where
 * ten million Sets over gRPC would take an hour. Before the close it lets
 * the compaction the writes set off finish (as bench/store.ts does): the
 * state a server restarts from after a quiet spell, its replay bounded by
 * the checkpoint (a stop in the middle of a compaction replays more: the
 * worst case is bench:store --worst-case). The directory is then opened by
 * a real kv-server, so its recovery time is measured too.
 *
 * Run as its own process by bench/preload.ts, so the index it builds is not
 * held by the bench: node --expose-gc --import tsx bench/preload-store.ts DIR COUNT
 * It prints {"heapUsedBytes": ...}: the V8 heap in use with all the keys
 * loaded, after a full collection, which is what kv-server's index of the
 * same keys takes too.
 */
import { openFileStore } from '../src/store/file';
import { keyName, VALUE } from './workloads';

/** Writes in flight at once: enough for large group commits, few enough to keep the queue small. */
const IN_FLIGHT = 2000;

async function preloadStore(dataDir: string, keyCount: number): Promise<{ heapUsedBytes: number }> {
  const store = await openFileStore({ dataDir, fsync: 'never' });
  try {
    for (let from = 0; from < keyCount; from += IN_FLIGHT) {
      const writes: Array<Promise<unknown>> = [];
      for (let index = from; index < Math.min(keyCount, from + IN_FLIGHT); index++) writes.push(store.set(keyName(index), VALUE));
      await Promise.all(writes);
    }
    const deadline = Date.now() + 30 * 60_000;
    while (store.diskUsage.compacting && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    global.gc?.();
    return { heapUsedBytes: process.memoryUsage().heapUsed };
  } finally {
    await store.close();
  }
}

const [dataDir, count] = process.argv.slice(2);
const keyCount = Number(count);
if (dataDir === undefined || !Number.isInteger(keyCount) || keyCount < 0) {
  process.stderr.write('usage: node --expose-gc --import tsx bench/preload-store.ts DIR COUNT\n');
  process.exit(2);
}
preloadStore(dataDir, keyCount)
  .then((result) => process.stdout.write(`${JSON.stringify(result)}\n`))
  .catch((error: unknown) => {
    process.stderr.write(`preload-store: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
