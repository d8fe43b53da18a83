/**
 * Child process of `npm run bench:store -- --worst-case`: opens a populated
 * data directory and overwrites random keys (the bench's 100-byte values)
 * until the logs since the last checkpoint are just short of starting the
 * next one, then prints "ready" and waits to be killed with SIGKILL: the
 * largest log a restart can have to replay.
 *
 *   node --import tsx bench/store-tail-writer.ts DIR KEYS [HISTORY_CHANGES]
 */
import { openFileStore } from '../src/store/file';
import { benchKey, benchValue } from './store-values';

/** Stop this close to the trigger: the next round of writes could cross it. */
const SHORT_OF_DUE = 0.98;

async function main(): Promise<void> {
  const [dataDir, count, historyChanges] = process.argv.slice(2);
  const keys = Number(count);
  const feed = historyChanges === undefined ? {} : { history: { maxChanges: Number(historyChanges) } };
  const store = await openFileStore({ dataDir, fsync: 'never', feed });
  // A compaction due at open (or running) first: the tail is measured from the checkpoint it writes.
  while (store.diskUsage.compacting) await new Promise((r) => setTimeout(r, 50));
  let seed = 54321;
  let w = 1;
  while (store.diskUsage.checkpointProgress < SHORT_OF_DUE) {
    await Promise.all(
      Array.from({ length: 64 }, () => {
        // Math.imul: a plain product passes 2^53, loses its low bits, and the sequence falls into a short cycle of a few thousand keys.
        seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
        const i = seed % keys;
        return store.set(benchKey(i), benchValue(i, w++));
      }),
    );
  }
  process.stdout.write(`ready ${JSON.stringify({ writes: w - 1, ...store.diskUsage })}\n`);
  // Killed here: no close, no checkpoint at shutdown.
  await new Promise(() => undefined);
}

main().catch((err: unknown) => {
  process.stderr.write(`store-tail-writer: ${String(err)}\n`);
  process.exit(2);
});
