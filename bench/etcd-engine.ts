/**
 * kv's etcd engine side by side, in one run, on one 3-member etcd cluster
 * on loopback:
 *
 *   etcd        etcd itself: Put and linearizable Range on one connection to member 0 (the anchor)
 *   kv-etcd-1   one kv frontend (--engine etcd) over the cluster
 *   kv-etcd-2   two kv frontends over the cluster, the calls split between them
 *   kv-file     the embedded file engine (fsync always), for scale
 *
 * Set and Get at c=64 with h2load, interleaved rounds. The CPU of the
 * frontends and of the three members is sampled around each run, so the
 * report can say what a frontend costs per call over etcd itself.
 */
import { startEtcdCluster, type EtcdCluster } from '../test/support/etcd-cluster';
import { callsFor, measureThroughput, rotate, roundKey } from './measure';
import { log, RunCounter } from './progress';
import type { SetupRun, Settings } from './results';
import { makeTempDir, startKv, type RunningServer } from './servers';
import { GET_LINEARIZABLE, SET } from './workloads';

export const ENGINE_SETUPS = ['etcd', 'kv-etcd-1', 'kv-etcd-2', 'kv-file'] as const;
export type EngineSetup = (typeof ENGINE_SETUPS)[number];
export const ENGINE_WORKLOADS = [SET, GET_LINEARIZABLE] as const;
const KEY_SPACE = 1000;
/** The etcd prefix the frontends keep kv's keys under; the anchor writes beside it, under direct/. */
const PREFIX = 'kv/';

const memberPids = (cluster: EtcdCluster): number[] =>
  [0, 1, 2].map((index) => cluster.pid(index)).filter((pid): pid is number => pid !== undefined);

export async function runEngine(settings: Settings, workDir: string): Promise<SetupRun[]> {
  const fileDir = makeTempDir('engine-file');
  const frontendDirs = [makeTempDir('engine-frontend-1'), makeTempDir('engine-frontend-2')];
  const cluster = await startEtcdCluster({ watchProgressMs: 5000 });
  const started: RunningServer[] = [];
  const concurrency = settings.engineConcurrency;
  try {
    const frontendArgs = ['--engine', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', PREFIX];
    const frontends = [
      await startKv({ dataDir: frontendDirs[0].dir, args: frontendArgs }),
      await startKv({ dataDir: frontendDirs[1].dir, args: frontendArgs }),
    ];
    const file = await startKv({ dataDir: fileDir.dir });
    started.push(...frontends, file);
    const anchor: RunningServer = {
      name: 'etcd',
      address: cluster.endpoints[0].replace(/^https?:\/\//, ''),
      pid: cluster.pid(0) ?? 0,
      startupMs: 0,
      stop: () => Promise.resolve(),
    };
    const targets: Record<EngineSetup, RunningServer | RunningServer[]> = {
      etcd: anchor,
      'kv-etcd-1': frontends[0],
      'kv-etcd-2': frontends,
      'kv-file': file,
    };
    const keyFor = (setup: EngineSetup, round: number): string => `${setup === 'etcd' ? 'direct/' : ''}${roundKey(KEY_SPACE, round)}`;
    log(`engine: etcd ${cluster.endpoints.join(',')}; frontends ${frontends.map((f) => f.address).join(' ')}; file engine ${file.address}`);

    const measure = (setup: EngineSetup, workload: (typeof ENGINE_WORKLOADS)[number], round: number, calls?: number) =>
      measureThroughput({
        server: targets[setup],
        workload,
        concurrency,
        key: keyFor(setup, round),
        calls,
        durationSec: calls === undefined ? settings.warmupSec : undefined,
        workDir,
        alsoCpuOf: setup === 'kv-file' ? {} : { etcd: memberPids(cluster) },
      });
    const rates = new Map<string, number>();
    for (const workload of ENGINE_WORKLOADS) {
      for (const setup of ENGINE_SETUPS) rates.set(`${setup}/${workload.id}`, (await measure(setup, workload, 0)).okPerSec);
    }
    const runs: SetupRun[] = [];
    const counter = new RunCounter(settings.rounds * ENGINE_WORKLOADS.length * ENGINE_SETUPS.length, 'engine');
    for (let round = 0; round < settings.rounds; round++) {
      // Set first: the Get runs read the key the Set runs of the round wrote.
      for (const workload of ENGINE_WORKLOADS) {
        for (const setup of rotate(ENGINE_SETUPS, round)) {
          const rateKey = `${setup}/${workload.id}`;
          const throughput = await measure(setup, workload, round, callsFor(rates.get(rateKey) ?? 0, settings.durationSec, concurrency));
          rates.set(rateKey, throughput.okPerSec);
          runs.push({ setup, workload: workload.id, round, throughput });
          counter.step(`round ${round + 1} ${workload.label} ${setup}: ${Math.round(throughput.okPerSec)}/s`);
        }
      }
    }
    return runs;
  } finally {
    await Promise.all(started.map((server) => server.stop()));
    await cluster.stop();
    fileDir.remove();
    for (const dir of frontendDirs) dir.remove();
  }
}
