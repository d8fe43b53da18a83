/**
 * The side-by-side runs: kv, etcd and the echo ceiling, all up at once, each
 * workload and concurrency run against A B C in turn (rotated per round), so
 * that every kv figure has etcd and echo figures measured moments apart. Each
 * turn is an h2load run for calls/s on one key, then a ghz run for latency
 * over many keys.
 */
import { measureFsyncCost } from './fsync-cost';
import { callsFor, measureLatency, measureThroughput, rotate, roundKey } from './measure';
import { preload } from './preload';
import { log, RunCounter } from './progress';
import type { Measurement, ReadBeforeWrites, Settings } from './results';
import type { Summary } from './stats';
import { makeTempDir, startEcho, startEtcd, startKv, type RunningServer, type ServerName } from './servers';
import { randomKeys, serversFor, WORKLOADS, writeGhzDataFile } from './workloads';

export const SERVERS: readonly ServerName[] = ['kv', 'etcd', 'echo'];

const FSYNC_SAMPLES_PER_ROUND = 300;

/**
 * Reads on servers that have taken no write since they started, rotated
 * like the rounds. etcd 3.4 copies its backend's read buffer on every
 * serializable read, a buffer that keeps the size the last burst of writes
 * gave it (etcd 3.5 shares one copy: etcd-io/etcd#12933), so its reads cost
 * more once it has taken writes; these runs show the cost before that.
 */
async function readsBeforeWrites(
  servers: Record<ServerName, RunningServer>,
  settings: Settings,
  workDir: string,
): Promise<ReadBeforeWrites[]> {
  const concurrency = Math.max(...settings.concurrencies);
  const key = roundKey(settings.keySpace, 0);
  const results: ReadBeforeWrites[] = [];
  for (const workload of WORKLOADS.filter((candidate) => !candidate.writesKey)) {
    const names = serversFor(workload, SERVERS);
    for (const name of names) {
      await measureThroughput({ server: servers[name], workload, concurrency, key, durationSec: settings.warmupSec, workDir });
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const name of rotate(names, round)) {
        const throughput = await measureThroughput({
          server: servers[name],
          workload,
          concurrency,
          key,
          durationSec: settings.durationSec,
          workDir,
        });
        results.push({ server: name, workload: workload.id, concurrency, round, throughput });
        log(`before any write: round ${round + 1} ${workload.label} c=${concurrency} ${name}: ${Math.round(throughput.okPerSec)}/s`);
      }
    }
  }
  return results;
}

export async function runComparison(
  settings: Settings,
  workDir: string,
): Promise<{ measurements: Measurement[]; readsBeforeWrites: ReadBeforeWrites[]; fsyncByRound: Summary[] }> {
  const kvDir = makeTempDir('kv');
  const etcdDir = makeTempDir('etcd');
  const running: RunningServer[] = [];
  try {
    // Gets must find their keys: the whole key space is written into kv and etcd first.
    await preload('kv', kvDir.dir, settings.keySpace);
    await preload('etcd', etcdDir.dir, settings.keySpace);
    running.push(await startKv({ dataDir: kvDir.dir }), await startEtcd({ dataDir: etcdDir.dir }), await startEcho());
    const servers = Object.fromEntries(running.map((server) => [server.name, server])) as Record<ServerName, RunningServer>;
    log(`servers up with ${settings.keySpace} keys: ${running.map((server) => `${server.name} ${server.address}`).join(', ')}`);

    const beforeWrites = await readsBeforeWrites(servers, settings, workDir);

    const ghzKeys = randomKeys(settings.keySpace, settings.keySpace);
    const ghzFiles = new Map<string, string>();
    for (const workload of WORKLOADS) {
      for (const name of serversFor(workload, SERVERS)) {
        ghzFiles.set(`${name}/${workload.id}`, writeGhzDataFile(workDir, name, workload, ghzKeys, 'compare'));
      }
    }

    // Warm-up (JIT, connection setup, first log segments), which also gives each run's rate to size the first round's runs by.
    const rates = new Map<string, number>();
    const rateKey = (name: ServerName, workloadId: string, concurrency: number): string => `${name}/${workloadId}/${concurrency}`;
    for (const workload of WORKLOADS) {
      for (const concurrency of settings.concurrencies) {
        for (const name of serversFor(workload, SERVERS)) {
          const warm = await measureThroughput({
            server: servers[name],
            workload,
            concurrency,
            key: roundKey(settings.keySpace, 0),
            durationSec: settings.warmupSec,
            workDir,
          });
          rates.set(rateKey(name, workload.id, concurrency), warm.okPerSec);
        }
      }
    }
    log('warm-up done');

    const measurements: Measurement[] = [];
    const runCount = WORKLOADS.reduce((sum, workload) => sum + serversFor(workload, SERVERS).length, 0) * settings.concurrencies.length;
    const counter = new RunCounter(settings.rounds * runCount, 'compare');
    const fsyncByRound: Summary[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      const key = roundKey(settings.keySpace, round);
      // The floor for Set at c=1, taken again each round: the disk is shared too, and its cost moves with its neighbours.
      fsyncByRound.push(measureFsyncCost(FSYNC_SAMPLES_PER_ROUND));
      for (const workload of WORKLOADS) {
        for (const concurrency of settings.concurrencies) {
          for (const name of rotate(serversFor(workload, SERVERS), round)) {
            const server = servers[name];
            const throughput = await measureThroughput({
              server,
              workload,
              concurrency,
              key,
              calls: callsFor(rates.get(rateKey(name, workload.id, concurrency)) ?? 0, settings.durationSec, concurrency),
              workDir,
            });
            rates.set(rateKey(name, workload.id, concurrency), throughput.okPerSec);
            const latency = await measureLatency({
              server,
              workload,
              concurrency,
              dataFile: ghzFiles.get(`${name}/${workload.id}`) ?? '',
              durationSec: settings.latencySec,
            });
            measurements.push({ server: name, workload: workload.id, concurrency, round, throughput, latency });
            counter.step(
              `round ${round + 1} ${workload.label} c=${concurrency} ${name}: ${Math.round(throughput.okPerSec)}/s (h2load), p50 ${latency.p50Ms.toFixed(2)} ms (ghz)`,
            );
          }
        }
      }
    }
    return { measurements, readsBeforeWrites: beforeWrites, fsyncByRound };
  } finally {
    await Promise.all(running.map((server) => server.stop()));
    kvDir.remove();
    etcdDir.remove();
  }
}
