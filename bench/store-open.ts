/**
 * Opens a data directory in a fresh process and prints open time and memory
 * as JSON; bench/store.ts runs it so RSS is not inflated by the benchmark.
 * This process runs under tsx, which with node itself takes tens of MiB
 * before any store code runs: `baseRssBytes` is that RSS, measured here
 * just before the open, so the report can give both the process total and
 * what the open added.
 */
import { openFileStore } from '../src/store/file';

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  global.gc?.();
  const baseRssBytes = process.memoryUsage().rss;
  const started = performance.now();
  const store = await openFileStore({ dataDir });
  const ms = performance.now() - started;
  global.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  const keys = (await store.listKeys()).keys.length;
  await store.close();
  process.stdout.write(`${JSON.stringify({ ms, rssBytes: rss, baseRssBytes, heapBytes: heapUsed, keys })}\n`);
}

void main();
