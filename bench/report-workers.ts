/** The "Several processes" section of docs/benchmarks.md: kv --workers against one process, etcd and the echo server. */
import { cpuPerCall, failures, int, ms, okPerSec, over, pairedByRound, ratio, setupRuns, spread } from './report-format';
import type { BenchResults, SetupRun } from './results';
import { WORKER_SETUPS, WORKER_WORKLOADS, WORKERS_DEFAULTS, type WorkerSetup, type WorkersOptions, workersWorkload } from './workers';

/** The performance issue's goals for --workers, over several connections (the supervisor deals them to the workers). */
const GOALS: Record<string, number> = { set: 1.0, get: 1.5 };

export function workersSection(results: BenchResults): string[] {
  if (!results.workers) return [];
  return renderWorkers(results.workers, { ...(results.settings.workers ?? WORKERS_DEFAULTS), keys: results.settings.keySpace });
}

/** The section for `runs`, measured with `options` (also what `npm run bench:workers` prints). */
export function renderWorkers(
  runs: readonly SetupRun[],
  options: Pick<WorkersOptions, 'count' | 'concurrency' | 'connections' | 'keys'>,
): string[] {
  const { count, concurrency, connections, keys } = options;
  const labels: Record<WorkerSetup, string> = { kv: 'kv (1 process)', 'kv-workers': `kv (--workers ${count})`, etcd: 'etcd', echo: 'echo' };
  const shapes = WORKER_WORKLOADS.flatMap((workload) =>
    [1, connections].map((conns) => ({
      workload,
      conns,
      id: workersWorkload(workload.id, conns),
      name: `${workload.label} over ${conns} connection${conns === 1 ? '' : 's'}`,
    })),
  );
  const pair = (a: WorkerSetup, b: WorkerSetup, id: string, metric = okPerSec) =>
    pairedByRound(setupRuns(runs, a, id), setupRuns(runs, b, id), metric);
  const lines = [
    '## Several processes (--workers)',
    '',
    `Four servers up at once, the order rotated each round, kv and etcd first loaded with ${int(keys)} keys as in the comparison: kv in one process; kv with \`--workers ${count}\` (${count} processes serving gRPC on one port over a store owner; [operations.md](operations.md#several-processes---workers)); etcd; the echo server. h2load at c=${concurrency}, over one HTTP/2 connection (the supervisor hands a connection to one worker, so one connection exercises one worker) and over ${connections} connections (dealt to the workers in turn). Set runs are checked by the key's version as above. Server CPU is summed over every process of a server.`,
    '',
    '| workload | server | calls/s: median (min–max) | p50 ms | server CPU µs/call | failed calls |',
    '|---|---|---|---:|---:|---:|',
  ];
  for (const shape of shapes) {
    for (const setup of WORKER_SETUPS) {
      const these = setupRuns(runs, setup, shape.id);
      if (these.length === 0) continue;
      lines.push(
        `| ${shape.name} | ${labels[setup]} | ${spread(over(these, okPerSec), int)} | ${ms(over(these, (run) => run.throughput.p50Ms).median)} | ${int(over(these, cpuPerCall).median)} | ${failures(these)} |`,
      );
    }
  }
  lines.push(
    '',
    "Calls/s ratios within each round (median, range over rounds). The goal column is the performance issue's, for several connections: Set ≥ 1.0× etcd Put, Get ≥ 1.5× etcd serializable Range.",
    '',
    `| workload | kv --workers ${count} / etcd | goal | kv --workers ${count} / one process | one process / etcd | kv --workers ${count} / echo |`,
    '|---|---|---|---|---|---|',
  );
  for (const shape of shapes) {
    const vsEtcd = pair('kv-workers', 'etcd', shape.id);
    const goal = GOALS[shape.workload.id];
    const judged =
      shape.conns === connections && goal !== undefined && Number.isFinite(vsEtcd.median)
        ? `≥ ${goal.toFixed(1)}×: ${vsEtcd.median >= goal ? 'met' : '**missed**'}`
        : '';
    lines.push(
      `| ${shape.name} | ${spread(vsEtcd, ratio)} | ${judged} | ${spread(pair('kv-workers', 'kv', shape.id), ratio)} | ${spread(pair('kv', 'etcd', shape.id), ratio)} | ${spread(pair('kv-workers', 'echo', shape.id), ratio)} |`,
    );
  }
  lines.push(
    '',
    `Reads scale: each worker serves Gets from its own replica of the index, so a second process adds a second core's worth of gRPC work, minus the read-index step. Writes do not: every Set crosses to the store owner and back, and every worker applies every change to its replica, so a write costs more CPU in all than in one process (by process and by function in [benchmarks-set-path.md](benchmarks-set-path.md#where-a-sets-cpu-goes-and-what-a-second-process-costs)). That is why the default stays one process.`,
    '',
  );
  return lines;
}
