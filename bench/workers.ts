/**
 * Several processes, in `npm run bench`: kv in one process, kv with
 * `--workers N`, etcd and the grpc-js echo server, all up at once, Set and
 * Get at one concurrency over one HTTP/2 connection (which the supervisor
 * hands to one worker) and over several (which it deals to the workers in
 * turn), the order rotated each round (rotated-rounds.ts). `npm run
 * bench:workers` (compare-workers.ts) runs the same with its options on the
 * command line and prints the section instead of writing the report.
 */
import { preload } from './preload';
import { measureRotatedRounds, type Labelled, type RoundRun } from './rotated-rounds';
import type { Settings, SetupRun } from './results';
import { makeTempDir, startEcho, startEtcd, startKv } from './servers';
import { GET, SET } from './workloads';

export const WORKER_SETUPS = ['kv', 'kv-workers', 'etcd', 'echo'] as const;
export type WorkerSetup = (typeof WORKER_SETUPS)[number];
export const WORKER_WORKLOADS = [SET, GET] as const;
export const WORKERS_DEFAULTS = { count: 2, concurrency: 64, connections: 4 };

/** A SetupRun's workload: the workload's id and how many connections carried it, e.g. "set@4". */
export const workersWorkload = (workloadId: string, connections: number): string => `${workloadId}@${connections}`;

/** What one workers run measures: the part's settings, or `npm run bench:workers`'s flags. */
export interface WorkersOptions {
  count: number;
  concurrency: number;
  connections: number;
  rounds: number;
  durationSec: number;
  /** Keys loaded into both kv servers and etcd first. */
  keys: number;
}

export const workersOptions = (settings: Settings): WorkersOptions => ({
  ...(settings.workers ?? WORKERS_DEFAULTS),
  rounds: settings.rounds,
  durationSec: settings.durationSec,
  keys: settings.keySpace,
});

export async function runWorkers(options: WorkersOptions, workDir: string): Promise<SetupRun[]> {
  const { count, concurrency, connections, keys } = options;
  const dirs = WORKER_SETUPS.map((setup) => makeTempDir(`workers-${setup}`));
  const servers: Array<Labelled & { setup: WorkerSetup }> = [];
  try {
    // Loaded like the comparison's servers: etcd's reads cost more once it holds keys and has taken writes.
    await preload('kv', dirs[0].dir, keys);
    await preload('kv', dirs[1].dir, keys);
    await preload('etcd', dirs[2].dir, keys);
    servers.push(
      { ...(await startKv({ dataDir: dirs[0].dir })), label: 'kv (1 process)', setup: 'kv' },
      {
        ...(await startKv({ dataDir: dirs[1].dir, args: ['--workers', String(count)] })),
        label: `kv (--workers ${count})`,
        setup: 'kv-workers',
      },
      { ...(await startEtcd({ dataDir: dirs[2].dir })), label: 'etcd', setup: 'etcd' },
      { ...(await startEcho()), label: 'echo', setup: 'echo' },
    );
    // Sets first: each round's Get reads the key its Sets wrote.
    const runs: RoundRun[] = WORKER_WORKLOADS.flatMap((workload) => [
      { workload, concurrency, connections: 1 },
      { workload, concurrency, connections },
    ]);
    const id = (server: Labelled, run: RoundRun): string => `${workersWorkload(run.workload.id, run.connections ?? 1)} ${server.label}`;
    const { results } = await measureRotatedRounds({
      servers,
      runs,
      rounds: options.rounds,
      durationSec: options.durationSec,
      workDir,
      id,
    });
    return servers.flatMap((server) =>
      runs.flatMap((run) =>
        (results.get(id(server, run)) ?? []).map((throughput, round) => ({
          setup: server.setup,
          workload: workersWorkload(run.workload.id, run.connections ?? 1),
          round,
          throughput,
        })),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const dir of dirs) dir.remove();
  }
}
