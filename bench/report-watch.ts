/** The watch section of docs/benchmarks.md, and its chart. */
import type { BarChart } from './bar-chart-svg';
import { cpuPerCall, int, ms, okPerSec, over, pairedByRound, plural, ratio, spread } from './report-format';
import type { BenchResults, WatchFanoutRun, WatchIdleRun } from './results';
import { summarize } from './stats';
import { WATCH_SERVERS } from './watch';

export const WATCH_CHART = 'benchmarks-watch.svg';
const COLORS = { kv: '#2563eb', etcd: '#f59e0b' } as const;

const fanoutRuns = (results: BenchResults, server: string, watchers: number): WatchFanoutRun[] =>
  (results.watch?.fanout ?? []).filter((run) => run.server === server && run.watchers === watchers);
const idleRuns = (results: BenchResults, server: string, watchers: number): WatchIdleRun[] =>
  (results.watch?.idle ?? []).filter((run) => run.server === server && run.idleWatchers === watchers);

export function watchChart(results: BenchResults): BarChart | undefined {
  if (!results.watch) return undefined;
  const { watcherCounts } = results.settings.watch;
  const series = WATCH_SERVERS.map((server) => ({
    id: server,
    label: server === 'kv' ? 'kv (fsync always)' : 'etcd 3.4',
    color: COLORS[server],
  }));
  const panel = (title: string, metric: (run: WatchFanoutRun) => number): BarChart['panels'][number] => ({
    title,
    groups: watcherCounts.map((watchers) => ({
      label: plural(watchers, 'watcher'),
      values: Object.fromEntries(WATCH_SERVERS.map((server) => [server, over(fanoutRuns(results, server, watchers), metric)])),
    })),
  });
  return {
    title: 'Watch: one writer, N watchers on distinct prefixes',
    subtitle: `median of ${plural(results.settings.rounds, 'round')}, whisker min–max · ${results.machine.cpus} shared cores`,
    series,
    panels: [
      panel('events/s delivered (higher is better)', (run) => run.eventsPerSec),
      panel('write → event p99, ms (lower is better)', (run) => run.p99Ms),
    ],
  };
}

export function watchSection(results: BenchResults): string[] {
  if (!results.watch) return [];
  const { watcherCounts, idleWatcherCounts, writerConcurrency, idleConcurrency } = results.settings.watch;
  const lines = [
    '## Watch',
    '',
    `One writer (one connection, ${writerConcurrency} writes in flight) puts keys on the prefixes \`w/0/\` … \`w/(N-1)/\` in turn, and N watchers, one per prefix, each receive the events of theirs: every write is one event for one watcher. The watchers are N watch streams (at most 250 per HTTP/2 connection) in a separate Node process; kv's are \`Watch\` server streams with \`prefix\`, etcd's are \`Watch\` streams with one create request each (key and range_end). Each value carries the writer's send time (the machine's monotonic clock, the same in both processes), so the watcher measures **write → event**: from the moment the Set/Put was sent, through the commit (fdatasync on both), to the event's arrival. Events/s counts the events received from the writer's start to the last event. kv and etcd fresh, both up at once, alternating, ${plural(results.settings.rounds, 'round')} of about ${results.settings.durationSec} s. Every run first writes once to each prefix and waits for all N events, so every stream is live before the timed writes.`,
    '',
    `![Watch: events/s and write-to-event p99 with 1, 100 and 1000 watchers](${WATCH_CHART})`,
    '',
    '| watchers | server | events/s: median (min–max) | writes/s | write → event p50 ms | p99 ms | max ms | server CPU µs/write | events missed |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const watchers of watcherCounts) {
    for (const server of WATCH_SERVERS) {
      const runs = fanoutRuns(results, server, watchers);
      if (runs.length === 0) continue;
      const median = (metric: (run: WatchFanoutRun) => number): number => over(runs, metric).median;
      const missed = runs.reduce((sum, run) => sum + run.missedEvents + run.failedWrites, 0);
      lines.push(
        `| ${int(watchers)} | ${server} | ${spread(
          over(runs, (run) => run.eventsPerSec),
          int,
        )} | ${int(median((run) => run.writesPerSec))} | ${ms(median((run) => run.p50Ms))} | ${ms(median((run) => run.p99Ms))} | ${ms(median((run) => run.maxMs))} | ${int(median((run) => run.serverCpuUsPerWrite))} | ${missed} |`,
      );
    }
  }
  lines.push('', 'kv divided by etcd, within each round (median, range over rounds):', '');
  lines.push('| watchers | events/s kv / etcd | p99 write → event kv / etcd | server CPU per write kv / etcd |', '|---:|---|---|---|');
  for (const watchers of watcherCounts) {
    const kv = fanoutRuns(results, 'kv', watchers);
    const etcd = fanoutRuns(results, 'etcd', watchers);
    lines.push(
      `| ${int(watchers)} | ${spread(
        pairedByRound(kv, etcd, (run) => run.eventsPerSec),
        ratio,
      )} | ${spread(
        pairedByRound(kv, etcd, (run) => run.p99Ms),
        ratio,
      )} | ${spread(
        pairedByRound(kv, etcd, (run) => run.serverCpuUsPerWrite),
        ratio,
      )} |`,
    );
  }

  lines.push(
    '',
    '### What a write costs per watcher',
    '',
    `N watchers (streams as above) on prefixes \`idle/0/\` … that nobody writes to, while h2load sends Sets (etcd: Puts) of another key at c=${idleConcurrency}; server CPU (user + system, all threads) per Set. A write that looked at every watcher would cost more with every watcher added; one that finds the watchers of its key through an index (kv: a map by key and by prefix, probed once per distinct prefix length; etcd: its watcher group's interval tree) costs the same. "vs none" divides by the run without watchers of the same round.`,
    '',
    '| idle watchers | server | Set calls/s | server CPU µs/Set | CPU per Set vs none | failed calls |',
    '|---:|---|---|---:|---|---:|',
  );
  for (const watchers of idleWatcherCounts) {
    for (const server of WATCH_SERVERS) {
      const runs = idleRuns(results, server, watchers);
      if (runs.length === 0) continue;
      const vsNone = watchers === 0 ? '' : spread(pairedByRound(runs, idleRuns(results, server, 0), cpuPerCall), ratio);
      lines.push(
        `| ${int(watchers)} | ${server} | ${spread(over(runs, okPerSec), int)} | ${int(over(runs, cpuPerCall).median)} | ${vsNone} | ${runs.reduce((sum, run) => sum + run.throughput.failedCalls, 0)} |`,
      );
    }
  }
  const most = Math.max(...idleWatcherCounts);
  const perWatcher = (server: string): string => {
    const none = over(idleRuns(results, server, 0), cpuPerCall).median;
    const many = over(idleRuns(results, server, most), cpuPerCall).median;
    return ms(((many - none) / most) * 1000);
  };
  if (idleWatcherCounts.includes(0) && most > 0) {
    lines.push(
      '',
      `Per write and per idle watcher, from the medians: kv ${perWatcher('kv')} ns, etcd ${perWatcher('etcd')} ns (the CPU per Set with ${int(most)} idle watchers minus that with none, divided by ${int(most)}; within the noise of the run when near 0 or below it, and a write to one key would cost ${int(most)} times that if it scanned every watcher).`,
    );
  }
  const cpuRatio = summarize(
    idleWatcherCounts.flatMap((watchers) => {
      const ratios = pairedByRound(idleRuns(results, 'kv', watchers), idleRuns(results, 'etcd', watchers), cpuPerCall);
      return Number.isFinite(ratios.median) ? [ratios.median] : [];
    }),
  );
  if (cpuRatio.count > 0)
    lines.push('', `CPU per Set, kv / etcd, beside idle watchers: ${spread(cpuRatio, ratio)} (median over the watcher counts).`);
  lines.push('');
  return lines;
}
