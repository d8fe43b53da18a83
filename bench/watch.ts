/**
 * The watch benchmark, kv and etcd side by side (both up at once, fresh,
 * the order rotated each round):
 *
 * - fan-out: N watchers (1, 100, 1000) on distinct prefixes w/0/ ...
 *   w/(N-1)/, and one writer putting keys on those prefixes in turn, so
 *   every write is one event for one watcher. Events/s delivered, and the
 *   time from a write's send to its event's arrival (p50/p99/max), from the
 *   send time the value carries.
 * - idle watchers: N (0, 100, 1000) watchers on prefixes nobody writes,
 *   and h2load's Sets on another key; server CPU per write. A write should
 *   cost the same whatever the number of watchers not concerned by it.
 *
 * The watchers are streams of a separate Node process (bench/watch-client.ts),
 * at most 250 per connection.
 */
import { callsFor, measureThroughput, rotate } from './measure';
import { cpuSeconds } from './process-usage';
import { log, RunCounter } from './progress';
import type { Settings, WatchFanoutRun, WatchIdleRun, WatchResults } from './results';
import { makeTempDir, startEtcd, startKv, type RunningServer } from './servers';
import { runWriter, startWatchClient } from './watch-load';
import { SET } from './workloads';

export const WATCH_SERVERS = ['kv', 'etcd'] as const;
const EVENT_TIMEOUT_MS = 60_000;

async function fanout(
  server: RunningServer,
  watchers: number,
  writeSeconds: number,
  concurrency: number,
): Promise<Omit<WatchFanoutRun, 'round'>> {
  const client = await startWatchClient(server, watchers, 'w/');
  try {
    const keyOf = (index: number): string => `w/${index % watchers}/k`;
    // One write on every prefix: each watcher's first event proves its stream is live.
    const warm = await runWriter(server, { concurrency, keyOf, count: watchers });
    if (warm.failed > 0) throw new Error(`${server.name}: warm-up writes failed: ${warm.firstError}`);
    const ready = await client.wait(watchers, EVENT_TIMEOUT_MS);
    if (ready.timedOut) throw new Error(`${server.name}: only ${ready.events} of ${watchers} watchers got their first event`);
    await client.reset();
    const cpuBefore = cpuSeconds(server.pid);
    const writes = await runWriter(server, { concurrency, keyOf, durationSec: writeSeconds });
    const delivered = await client.wait(writes.ok, EVENT_TIMEOUT_MS);
    const cpuUsed = cpuSeconds(server.pid) - cpuBefore;
    const seconds = (delivered.lastUs - writes.startUs) / 1e6;
    return {
      server: server.name as WatchFanoutRun['server'],
      watchers,
      writes: writes.ok,
      failedWrites: writes.failed,
      writesPerSec: writes.ok / ((writes.endUs - writes.startUs) / 1e6),
      events: delivered.events,
      eventsPerSec: seconds > 0 ? delivered.events / seconds : 0,
      missedEvents: Math.max(0, writes.ok - delivered.events),
      p50Ms: delivered.p50Us / 1000,
      p99Ms: delivered.p99Us / 1000,
      maxMs: delivered.maxUs / 1000,
      serverCpuUsPerWrite: writes.ok > 0 ? (cpuUsed * 1e6) / writes.ok : Number.NaN,
    };
  } finally {
    await client.stop();
  }
}

async function idle(
  server: RunningServer,
  watchers: number,
  settings: Settings,
  rate: number,
  workDir: string,
): Promise<Omit<WatchIdleRun, 'round'>> {
  const client = watchers > 0 ? await startWatchClient(server, watchers, 'idle/') : undefined;
  try {
    if (client) {
      const warm = await runWriter(server, { concurrency: 16, keyOf: (index) => `idle/${index}/k`, count: watchers });
      if (warm.failed > 0) throw new Error(`${server.name}: warm-up writes failed: ${warm.firstError}`);
      const ready = await client.wait(watchers, EVENT_TIMEOUT_MS);
      if (ready.timedOut) throw new Error(`${server.name}: only ${ready.events} of ${watchers} idle watchers got their first event`);
    }
    const concurrency = settings.watch.idleConcurrency;
    const throughput = await measureThroughput({
      server,
      workload: SET,
      concurrency,
      key: 'busy/k',
      calls: callsFor(rate, settings.durationSec, concurrency),
      workDir,
    });
    return { server: server.name as WatchIdleRun['server'], idleWatchers: watchers, throughput };
  } finally {
    await client?.stop();
  }
}

export async function runWatch(settings: Settings, workDir: string): Promise<WatchResults> {
  const { watcherCounts, idleWatcherCounts, writerConcurrency, idleConcurrency } = settings.watch;
  const kvDir = makeTempDir('watch-kv');
  const etcdDir = makeTempDir('watch-etcd');
  const running: RunningServer[] = [];
  try {
    running.push(await startKv({ dataDir: kvDir.dir }), await startEtcd({ dataDir: etcdDir.dir }));
    log(`watch: ${running.map((server) => `${server.name} ${server.address}`).join(', ')}`);
    const rates = new Map<string, number>();
    for (const server of running) {
      await fanout(server, 1, settings.warmupSec, writerConcurrency);
      const warm = await measureThroughput({
        server,
        workload: SET,
        concurrency: idleConcurrency,
        key: 'busy/k',
        durationSec: settings.warmupSec,
        workDir,
      });
      rates.set(server.name, warm.okPerSec);
    }
    const fanouts: WatchFanoutRun[] = [];
    const idles: WatchIdleRun[] = [];
    const counter = new RunCounter(settings.rounds * running.length * (watcherCounts.length + idleWatcherCounts.length), 'watch');
    for (let round = 0; round < settings.rounds; round++) {
      for (const watchers of watcherCounts) {
        for (const server of rotate(running, round)) {
          const run = { ...(await fanout(server, watchers, settings.durationSec, writerConcurrency)), round };
          fanouts.push(run);
          counter.step(
            `round ${round + 1} ${watchers} watchers ${server.name}: ${Math.round(run.eventsPerSec)} events/s, p99 ${run.p99Ms.toFixed(1)} ms${run.missedEvents ? `, ${run.missedEvents} MISSED` : ''}`,
          );
        }
      }
      for (const watchers of idleWatcherCounts) {
        for (const server of rotate(running, round)) {
          const run = { ...(await idle(server, watchers, settings, rates.get(server.name) ?? 0, workDir)), round };
          rates.set(server.name, run.throughput.okPerSec);
          idles.push(run);
          counter.step(
            `round ${round + 1} ${watchers} idle watchers ${server.name}: ${Math.round(run.throughput.serverCpuUsPerCall)} µs CPU per Set`,
          );
        }
      }
    }
    return { fanout: fanouts, idle: idles };
  } finally {
    await Promise.all(running.map((server) => server.stop()));
    kvDir.remove();
    etcdDir.remove();
  }
}
