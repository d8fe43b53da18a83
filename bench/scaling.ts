/**
 * kv throughput against the number of keys it holds. One kv-server per key
 * count, all up at once and run in rotation like the comparison, so the
 * figures for 1k and 1M keys are measured under the same machine noise.
 */
import { rotate, timedRun } from './measure';
import { preloadStore } from './preload-store';
import { log, RunCounter } from './progress';
import type { ScalingMeasurement, ScalingStartup, Settings } from './results';
import { makeTempDir, startKv, type RunningServer } from './servers';
import { OPERATIONS, randomKeys, writeDataFile } from './workloads';

/** Enough distinct requests that a 10 s run rarely repeats one. */
const MAX_DISTINCT_REQUESTS = 50_000;

interface Instance {
  keys: number;
  server: RunningServer;
  remove: () => void;
  setFile: string;
  getFile: string;
}

export async function runScaling(
  settings: Settings,
  workDir: string,
): Promise<{ measurements: ScalingMeasurement[]; startup: ScalingStartup[] }> {
  const instances: Instance[] = [];
  const startup: ScalingStartup[] = [];
  try {
    for (const keys of settings.scalingKeyCounts) {
      const dir = makeTempDir(`kv-${keys}`);
      const preloadStarted = performance.now();
      let preloadMs: number;
      let server: RunningServer;
      try {
        await preloadStore(dir.dir, keys);
        preloadMs = performance.now() - preloadStarted;
        server = await startKv({ dataDir: dir.dir });
      } catch (error) {
        dir.remove();
        throw error;
      }
      startup.push({ keys, preloadMs, startupMs: server.startupMs });
      const sample = randomKeys(keys, Math.min(keys, MAX_DISTINCT_REQUESTS), keys);
      instances.push({
        keys,
        server,
        remove: dir.remove,
        setFile: writeDataFile(workDir, 'kv', 'set', sample, `scaling-${keys}`),
        getFile: writeDataFile(workDir, 'kv', 'get', sample, `scaling-${keys}`),
      });
      log(`kv with ${keys} keys: preloaded in ${Math.round(preloadMs)} ms, started in ${Math.round(server.startupMs)} ms`);
    }

    const concurrency = settings.scalingConcurrency;
    for (const instance of instances) {
      for (const operation of OPERATIONS) {
        const dataFile = operation === 'set' ? instance.setFile : instance.getFile;
        await timedRun({ server: instance.server, serverName: 'kv', operation, concurrency, dataFile, durationSec: settings.warmupSec });
      }
    }

    const measurements: ScalingMeasurement[] = [];
    const counter = new RunCounter(settings.rounds * OPERATIONS.length * instances.length, 'scaling');
    for (let round = 0; round < settings.rounds; round++) {
      for (const operation of OPERATIONS) {
        for (const instance of rotate(instances, round)) {
          const dataFile = operation === 'set' ? instance.setFile : instance.getFile;
          const result = await timedRun({
            server: instance.server,
            serverName: 'kv',
            operation,
            concurrency,
            dataFile,
            durationSec: settings.durationSec,
          });
          measurements.push({
            keys: instance.keys,
            operation,
            round,
            okPerSec: result.okPerSec,
            p50Ms: result.p50Ms,
            p99Ms: result.p99Ms,
            errors: result.errorCount,
          });
          counter.step(`round ${round + 1} ${operation} ${instance.keys} keys: ${Math.round(result.okPerSec)}/s`);
        }
      }
    }
    return { measurements, startup };
  } finally {
    await Promise.all(instances.map((instance) => instance.server.stop()));
    for (const instance of instances) instance.remove();
  }
}
