/**
 * kv-server --workers: kv in one process, kv with --workers 2 (or --workers
 * N), etcd and the grpc-js echo server, all up at once and measured by
 * h2load as `npm run bench` measures them (bench/measure.ts: every run
 * checked call for call; server CPU summed over every process of a server),
 * in rounds whose order rotates. Prints each run, the medians over rounds,
 * and the ratios taken within each round: kv(1)/etcd, kv(N)/etcd,
 * kv(N)/kv(1).
 *
 *   npm run bench:workers -- [--workers 2] [--rounds 3] [--duration 4] [--concurrency 64] [--connections 4]
 *
 * Each workload runs twice: over one HTTP/2 connection (as every other part
 * of the bench measures), which the supervisor hands to one worker, and over
 * --connections connections, which it deals to the workers in turn.
 *
 * Needs `npm run build` and scripts/install-bench-tools.sh (h2load, etcd).
 */
import { preload } from './preload';
import { makeTempDir, startEcho, startEtcd, startKv } from './servers';
import { fmt, type Labelled, measureRotatedRounds, range, roundRatio } from './rotated-rounds';
import { GET, SET, type Workload } from './workloads';

const KEYS = 1_000;

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}: "${process.argv[index + 1]}" is not a positive integer`);
  return value;
}

async function main(): Promise<void> {
  const workers = flag('--workers', 2);
  const rounds = flag('--rounds', 3);
  const durationSec = flag('--duration', 4);
  const concurrency = flag('--concurrency', 64);
  const connections = flag('--connections', 4);
  // h2load's one connection (as every other part measures) lands on one worker; several spread over them.
  const runs: ReadonlyArray<{ workload: Workload; concurrency: number; connections: number }> = [SET, GET].flatMap((workload) => [
    { workload, concurrency, connections: 1 },
    { workload, concurrency, connections },
  ]);
  const work = makeTempDir('workers');
  const dirs = [makeTempDir('workers-kv1'), makeTempDir('workers-kvn'), makeTempDir('workers-etcd')];
  const servers: Labelled[] = [];
  try {
    await preload('kv', dirs[0].dir, KEYS);
    await preload('kv', dirs[1].dir, KEYS);
    await preload('etcd', dirs[2].dir, KEYS);
    servers.push(
      { ...(await startKv({ dataDir: dirs[0].dir })), label: 'kv (1 process)' },
      { ...(await startKv({ dataDir: dirs[1].dir, args: ['--workers', String(workers)] })), label: `kv (--workers ${workers})` },
      { ...(await startEtcd({ dataDir: dirs[2].dir })), label: 'etcd' },
      { ...(await startEcho()), label: 'echo' },
    );
    const [kv1, kvN, etcd, echo] = servers;
    const runName = (run: (typeof runs)[number]): string =>
      `${run.workload.label} c=${run.concurrency} over ${run.connections} connection${run.connections === 1 ? '' : 's'}`;
    const id = (server: Labelled, run: (typeof runs)[number]): string => `${runName(run)} ${server.label}`;
    const { results, fsyncMs } = await measureRotatedRounds({ servers, runs, rounds, durationSec, workDir: work.dir, id });
    const lines = [
      `${rounds} rounds of about ${durationSec} s per run; one fsync (100-byte write over zeros written ahead + fdatasync), median per round: ${fsyncMs.map((ms) => fmt(ms, 2)).join(', ')} ms`,
      '',
      '| run | server | calls/s: median (min–max) | p50 ms | server CPU µs/call (all its processes) |',
      '|---|---|---|---|---|',
    ];
    for (const run of runs) {
      for (const server of servers) {
        const all = results.get(id(server, run)) ?? [];
        lines.push(
          `| ${runName(run)} | ${server.label} | ${range(all.map((r) => r.okPerSec))} | ${range(
            all.map((r) => r.p50Ms),
            2,
          )} | ${range(all.map((r) => r.serverCpuUsPerCall))} |`,
        );
      }
    }
    const pairs: Array<[Labelled, Labelled]> = [
      [kv1, etcd],
      [kvN, etcd],
      [kvN, kv1],
      [kv1, echo],
      [kvN, echo],
    ];
    lines.push(
      '',
      '| run | ' + pairs.map(([a, b]) => `${a.label} / ${b.label}`).join(' | ') + ' |',
      `|---|${pairs.map(() => '---|').join('')}`,
    );
    for (const run of runs) {
      const cells = pairs.map(([a, b]) => `${roundRatio(results, id(a, run), id(b, run))}×`);
      lines.push(`| ${runName(run)} | ${cells.join(' | ')} |`);
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    for (const server of servers) await server.stop();
    work.remove();
    for (const dir of dirs) dir.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`compare-workers: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
