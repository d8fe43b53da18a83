/**
 * Fills a kv data directory for the scaling runs by writing through the
 * store's own API in-process (fsync "never", then close, which flushes): a
 * million keys this way takes seconds, where a million Sets over gRPC would
 * take minutes. The directory is then opened by a real kv-server, so its
 * recovery time is measured too. Imported lazily so the rest of the bench
 * does not depend on the store's internals.
 */
import { keyName, VALUE } from './workloads';

const IN_FLIGHT = 2000;

export async function preloadStore(dataDir: string, keyCount: number): Promise<void> {
  const { openFileStore } = await import('../src/store/file');
  const store = await openFileStore({ dataDir, fsync: 'never' });
  try {
    for (let from = 0; from < keyCount; from += IN_FLIGHT) {
      const writes: Array<Promise<unknown>> = [];
      for (let index = from; index < Math.min(keyCount, from + IN_FLIGHT); index++) writes.push(store.set(keyName(index), VALUE));
      await Promise.all(writes);
      // Yield a macrotask before the next chunk: the store's group commit
      // (as of this writing) strands writes submitted in the microtask right
      // after a batch settles, and the preload would hang.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await store.close();
  }
}
