/**
 * kv and etcd holding the same N keys, side by side, for each N in turn:
 * each data directory is filled first (bench/preload.ts), then the server is
 * started on it, which measures start-up (recovery of N keys), memory and
 * disk; then Set and Get on one of the N keys with h2load, kv and etcd
 * alternating, as in the comparison. Sizes run one at a time, each server
 * stopped and its directory removed before the next, so the largest size
 * has the machine's memory to itself.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { diskBytes } from './disk-usage';
import { callsFor, measureThroughput, rotate, roundKey } from './measure';
import { preload, type Preloaded } from './preload';
import { memoryOf } from './process-usage';
import { log, RunCounter } from './progress';
import type { ScaleMeasurement, ScaleStart, Settings } from './results';
import { makeTempDir, startEtcd, startKv, type RunningServer } from './servers';
import { WORKLOADS } from './workloads';

const SCALE_SERVERS = ['kv', 'etcd'] as const;
type ScaleServer = (typeof SCALE_SERVERS)[number];

const count = (keys: number): string => keys.toLocaleString('en-US');

interface Loaded {
  server: RunningServer;
  start: ScaleStart;
}

/** Fills a directory with `keys` keys and starts `name` on it; the start record says how it went, even when it failed. */
async function loadAndStart(name: ScaleServer, keys: number, dir: string, settings: Settings): Promise<Loaded | ScaleStart> {
  let preloaded: Preloaded;
  try {
    preloaded = await preload(name, dir, keys, { etcdQuotaBackendBytes: settings.etcdQuotaBackendBytes });
  } catch (error) {
    const reason = `preloading failed: ${(error as Error).message.split('\n')[0]}`;
    log(`${name} with ${count(keys)} keys: ${reason}`);
    return { keys, server: name, preloadMs: Number.NaN, diskBytes: diskBytes(dir), error: reason };
  }
  const dbFile = path.join(dir, 'member', 'snap', 'db');
  const preloadMs = preloaded.ms;
  const start: ScaleStart = {
    keys,
    server: name,
    preloadMs,
    kvHeapUsedBytes: preloaded.heapUsedBytes,
    diskBytes: diskBytes(dir),
    etcdDbBytes: name === 'etcd' && existsSync(dbFile) ? statSync(dbFile).size : undefined,
  };
  log(
    `${name} with ${count(keys)} keys: preloaded in ${Math.round(preloadMs / 1000)} s, ${Math.round(start.diskBytes / keys)} bytes on disk per key`,
  );
  try {
    const server =
      name === 'kv'
        ? await startKv({ dataDir: dir })
        : await startEtcd({ dataDir: dir, quotaBackendBytes: settings.etcdQuotaBackendBytes });
    start.startupMs = server.startupMs;
    start.memoryAfterStart = memoryOf(server.pid);
    log(
      `${name} with ${count(keys)} keys: started in ${(server.startupMs / 1000).toFixed(1)} s, RSS ${Math.round(start.memoryAfterStart.rssBytes / 2 ** 20)} MiB`,
    );
    return { server, start };
  } catch (error) {
    start.error = (error as Error).message.split('\n')[0];
    log(`${name} with ${count(keys)} keys did not start: ${start.error}`);
    return start;
  }
}

export async function runScale(settings: Settings, workDir: string): Promise<{ measurements: ScaleMeasurement[]; starts: ScaleStart[] }> {
  const measurements: ScaleMeasurement[] = [];
  const starts: ScaleStart[] = [];
  const counter = new RunCounter(settings.scaleKeyCounts.length * settings.rounds * WORKLOADS.length * SCALE_SERVERS.length, 'scale');
  const concurrency = settings.scaleConcurrency;

  for (const keys of settings.scaleKeyCounts) {
    const dirs = SCALE_SERVERS.map((name) => makeTempDir(`scale-${name}-${keys}`));
    const running: Loaded[] = [];
    try {
      for (const [index, name] of SCALE_SERVERS.entries()) {
        const loaded = await loadAndStart(name, keys, dirs[index].dir, settings);
        if ('start' in loaded) running.push(loaded);
        else starts.push(loaded);
      }
      const rates = new Map<string, number>();
      for (const workload of WORKLOADS) {
        for (const { server } of running) {
          const warm = await measureThroughput({
            server,
            workload,
            concurrency,
            key: roundKey(keys, 0),
            durationSec: settings.warmupSec,
            workDir,
          });
          rates.set(`${server.name}/${workload.id}`, warm.okPerSec);
        }
      }
      for (let round = 0; round < settings.rounds; round++) {
        for (const workload of WORKLOADS) {
          for (const { server } of rotate(running, round)) {
            const throughput = await measureThroughput({
              server,
              workload,
              concurrency,
              key: roundKey(keys, round),
              calls: callsFor(rates.get(`${server.name}/${workload.id}`) ?? 0, settings.durationSec, concurrency),
              workDir,
            });
            rates.set(`${server.name}/${workload.id}`, throughput.okPerSec);
            measurements.push({ keys, server: server.name, workload: workload.id, round, throughput });
            counter.step(`${count(keys)} keys, round ${round + 1} ${workload.label} ${server.name}: ${Math.round(throughput.okPerSec)}/s`);
          }
        }
      }
    } finally {
      for (const { server, start } of running) {
        start.peakRssBytes = memoryOf(server.pid).peakRssBytes;
        starts.push(start);
        await server.stop();
      }
      for (const dir of dirs) dir.remove();
    }
  }
  return { measurements, starts };
}
