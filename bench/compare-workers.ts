/**
 * kv-server --workers by hand: the workers part of `npm run bench`
 * (bench/workers.ts: kv in one process, kv with --workers N, etcd and the
 * grpc-js echo server, all up at once, Set and Get over one HTTP/2
 * connection and over several, rounds whose order rotates) with its options
 * on the command line, printing the section to stdout instead of writing
 * docs/benchmarks.md.
 *
 *   npm run bench:workers -- [--workers 2] [--rounds 3] [--duration 4] [--concurrency 64] [--connections 4] [--keys 10000]
 *
 * Needs `npm run build` and scripts/install-bench-tools.sh (h2load, etcd).
 */
import { renderWorkers } from './report-workers';
import { makeTempDir } from './servers';
import { runWorkers } from './workers';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}: "${process.argv[index + 1]}" is not a positive integer`);
  return value;
}

async function main(): Promise<void> {
  const options = {
    count: flag('--workers', 2),
    rounds: flag('--rounds', 3),
    durationSec: flag('--duration', 4),
    concurrency: flag('--concurrency', 64),
    connections: flag('--connections', 4),
    keys: flag('--keys', 10_000),
  };
  const work = makeTempDir('workers');
  try {
    const runs = await runWorkers(options, work.dir);
    process.stdout.write(
      `\n${options.rounds} rounds of about ${options.durationSec} s per run\n\n${renderWorkers(runs, options).join('\n')}\n`,
    );
  } finally {
    work.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`compare-workers: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
