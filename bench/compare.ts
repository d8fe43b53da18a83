/**
 * The side-by-side runs: kv, etcd and the echo ceiling, all up at once, each
 * workload and concurrency run against A B C in turn (rotated per round), so
 * that every kv figure has etcd and echo figures measured moments apart.
 */
import { loadAll, rotate, timedRun } from './measure';
import { log, RunCounter } from './progress';
import type { Measurement, Settings } from './results';
import { makeTempDir, startEcho, startEtcd, startKv, type RunningServer } from './servers';
import { OPERATIONS, randomKeys, sequentialKeys, SERVERS, writeDataFile, type ServerName } from './workloads';

export async function runComparison(settings: Settings, workDir: string): Promise<Measurement[]> {
  const kvDir = makeTempDir('kv');
  const etcdDir = makeTempDir('etcd');
  const running: Partial<Record<ServerName, RunningServer>> = {};
  try {
    running.kv = await startKv({ dataDir: kvDir.dir });
    running.etcd = await startEtcd({ dataDir: etcdDir.dir });
    running.echo = await startEcho();
    const servers = running as Record<ServerName, RunningServer>;
    log(`servers up: kv ${servers.kv.address}, etcd ${servers.etcd.address}, echo ${servers.echo.address}`);

    // Gets must find their keys: write the whole key space into kv and etcd first.
    for (const name of ['kv', 'etcd'] as const) {
      const file = writeDataFile(workDir, name, 'set', sequentialKeys(settings.keySpace), 'preload');
      await loadAll(servers[name], name, file, settings.keySpace);
    }
    log(`preloaded ${settings.keySpace} keys into kv and etcd`);

    const dataFiles = new Map<string, string>();
    for (const name of SERVERS) {
      for (const operation of OPERATIONS) {
        dataFiles.set(
          `${name}/${operation}`,
          writeDataFile(workDir, name, operation, randomKeys(settings.keySpace, settings.keySpace), 'compare'),
        );
      }
    }
    const dataFile = (name: ServerName, operation: string): string => dataFiles.get(`${name}/${operation}`) ?? '';

    // Warm-up: JIT, connection setup, etcd's and kv's first log segments.
    for (const name of SERVERS) {
      for (const operation of OPERATIONS) {
        await timedRun({
          server: servers[name],
          serverName: name,
          operation,
          concurrency: 16,
          dataFile: dataFile(name, operation),
          durationSec: settings.warmupSec,
        });
      }
    }
    log('warm-up done');

    const measurements: Measurement[] = [];
    const counter = new RunCounter(settings.rounds * OPERATIONS.length * settings.concurrencies.length * SERVERS.length, 'compare');
    for (let round = 0; round < settings.rounds; round++) {
      for (const operation of OPERATIONS) {
        for (const concurrency of settings.concurrencies) {
          for (const name of rotate(SERVERS, round)) {
            const result = await timedRun({
              server: servers[name],
              serverName: name,
              operation,
              concurrency,
              dataFile: dataFile(name, operation),
              durationSec: settings.durationSec,
            });
            measurements.push({
              server: name,
              operation,
              concurrency,
              round,
              okPerSec: result.okPerSec,
              p50Ms: result.p50Ms,
              p99Ms: result.p99Ms,
              errors: result.errorCount,
              firstError: result.firstError,
              serverCpuUsPerCall: result.serverCpuUsPerCall,
            });
            counter.step(
              `round ${round + 1} ${operation} c=${concurrency} ${name}: ${Math.round(result.okPerSec)}/s p50 ${result.p50Ms.toFixed(2)} ms`,
            );
          }
        }
      }
    }
    return measurements;
  } finally {
    await Promise.all(Object.values(running).map((server) => server.stop()));
    kvDir.remove();
    etcdDir.remove();
  }
}
