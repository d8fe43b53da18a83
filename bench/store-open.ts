/**
 * Opens a data directory in a fresh process and prints open time and memory
 * as JSON; bench/store.ts runs it so RSS is not inflated by the benchmark.
 */
import { openFileStore } from '../src/store/file';

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  const started = performance.now();
  const store = await openFileStore({ dataDir });
  const ms = performance.now() - started;
  global.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  const keys = (await store.listKeys()).keys.length;
  await store.close();
  process.stdout.write(`${JSON.stringify({ ms, rssBytes: rss, heapBytes: heapUsed, keys })}\n`);
}

void main();
