/**
 * Child process for the crash tests: writes to the store at argv[2] from
 * several concurrent workers until it is killed, printing one line per
 * acknowledged write:
 *   S <revision> <key> <value JSON>    a set
 *   C <revision> <prefix>              a clear that removed something
 * Modes (argv[3]): "set"; "compact" (compaction forced to run all the time);
 * "clear" (also clears the c/ prefix now and then); "checkpoint" (new keys
 * only, and a checkpoint whenever the logs since the last one hold a record).
 */
import { openFileStore } from '../../src/store/file';

async function main(): Promise<void> {
  const [dataDir, mode] = process.argv.slice(2);
  const store = await openFileStore({
    dataDir,
    fsync: 'always',
    compaction:
      mode === 'compact'
        ? { minBytes: 8 * 1024, deadToLiveRatio: 0.3 }
        : mode === 'checkpoint'
          ? { logMinBytes: 1, logToLiveRatio: 0 }
          : undefined,
  });
  // New keys in every run.
  const run = Date.now().toString(36);
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  let n = 0;
  const worker = async (w: number): Promise<void> => {
    for (;;) {
      const i = n++;
      const space = mode === 'clear' && i % 2 === 0 ? 'c' : 'a';
      const key = mode === 'checkpoint' ? `u/${run}/${i}` : `${space}/${Math.floor(Math.random() * 60)}`;
      const value = { w, i, pad: 'x'.repeat(Math.floor(Math.random() * 200)) };
      const { revision } = await store.set(key, value);
      out(`S ${revision} ${key} ${JSON.stringify(value)}`);
    }
  };
  const clearer = async (): Promise<void> => {
    for (;;) {
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      const { deletedCount, revision } = await store.clear({ prefix: 'c/' });
      if (deletedCount > 0) out(`C ${revision} c/`);
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  if (mode === 'clear') workers.push(clearer());
  await Promise.all(workers);
}

main().catch((err: unknown) => {
  process.stderr.write(`crash-writer failed: ${String(err)}\n`);
  process.exit(2);
});
