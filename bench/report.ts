/** Renders a benchmark run as docs/benchmarks.md: the comparison and scale sections here, the other parts' in bench/report-*.ts. */
import { SERVERS } from './compare';
import type { BenchResults, Measurement, Part, ScaleMeasurement, ScaleStart } from './results';
import { partBlock, runsByPart } from './report-parts';
import type { ServerName } from './servers';
import { engineSection } from './report-engine';
import { int, ms, plural, ratio, spread } from './report-format';
import { storeSection } from './report-store';
import { tlsSection } from './report-tls';
import { txnSection } from './report-txn';
import { watchSection } from './report-watch';
import { workersSection } from './report-workers';
import { summarize, type Summary } from './stats';
import { GET, SET, serversFor, WORKLOADS, type Workload } from './workloads';

/** The comparison's chart, bench/chart-svg.ts. */
export const COMPARE_CHART = 'benchmarks.svg';

const seconds = (millis: number | undefined): string =>
  millis !== undefined && Number.isFinite(millis)
    ? millis < 10_000
      ? `${(millis / 1000).toFixed(2)} s`
      : `${Math.round(millis / 1000)} s`
    : '–';

/** A count worth two significant digits (an estimate), e.g. 12,000,000. */
const about = (value: number): string => (Number.isFinite(value) ? Number(value.toPrecision(2)).toLocaleString('en-US') : '–');

function size(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '–';
  if (bytes >= 2 ** 30) return `${Number((bytes / 2 ** 30).toFixed(2))} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(bytes >= 100 * 2 ** 20 ? 0 : 1)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(0)} KiB`;
}

/** "etcd (Put)": the server, and what the workload is called there when that differs. */
function serverLabel(workload: Workload, server: ServerName): string {
  const label = workload.calls[server]?.label;
  return label ? `${server} (${label})` : server;
}

function runs(results: BenchResults, server: ServerName, workload: string, concurrency: number): Measurement[] {
  return results.comparison.filter((m) => m.server === server && m.workload === workload && m.concurrency === concurrency);
}

const okPerSec = (m: Measurement): number => m.throughput.okPerSec;
const cpuPerCall = (m: Measurement): number => m.throughput.serverCpuUsPerCall;

/** kv divided by `other`, round by round (only runs measured moments apart are compared), summarized. */
export function pairedRatio(
  results: BenchResults,
  other: ServerName,
  workload: string,
  concurrency: number,
  metric: (m: Measurement) => number = okPerSec,
): Summary {
  const ratios: number[] = [];
  for (const kvRun of runs(results, 'kv', workload, concurrency)) {
    const otherRun = runs(results, other, workload, concurrency).find((m) => m.round === kvRun.round);
    if (otherRun && metric(otherRun) > 0) ratios.push(metric(kvRun) / metric(otherRun));
  }
  return summarize(ratios);
}

interface Target {
  label: string;
  measured: Summary;
  goal: number;
  /** true when higher is better (throughput ratios), false for latency ratios. */
  atLeast: boolean;
  /** Why the measurement cannot be judged in this run. */
  unjudged?: string;
}

/** A durable Set cannot beat one fdatasync on a quiet disk; when kv's "does", the probe met a busy one. */
function fsyncProbeDisturbed(results: BenchResults): boolean {
  const kvSetP50 = summarize(runs(results, 'kv', SET.id, 1).map((m) => m.throughput.p50Ms)).median;
  const probes = (results.fsyncByRound ?? []).map((round) => round.median);
  return kvSetP50 < summarize(probes.length > 0 ? probes : [results.fsync.median]).median;
}

/**
 * The goals of the performance issue ("Writes at the stack's ceiling, then
 * past one core") for one process, judged on the comparison's kv; its goals
 * for --workers 2 are judged by the workers part (report-workers.ts).
 */
function targets(results: BenchResults): Target[] {
  const top = Math.max(...results.settings.concurrencies);
  // Each round's numbers against the fsync cost measured at that round's start (older results have only the run's).
  const fsyncOf = (round: number): number => (results.fsyncByRound ?? [])[round]?.median ?? results.fsync.median;
  // Mean latency at c=1 from calls/s: one call in flight at a time.
  const meanMs = (m: Measurement): number => 1000 / m.throughput.okPerSec;
  const echoC1 = runs(results, 'echo', SET.id, 1);
  const overFloor: number[] = [];
  for (const kvRun of runs(results, 'kv', SET.id, 1)) {
    const echoRun = echoC1.find((m) => m.round === kvRun.round);
    if (echoRun) overFloor.push(meanMs(kvRun) / (meanMs(echoRun) + fsyncOf(kvRun.round) + 0.1));
  }
  return [
    { label: `Set c=${top}: kv / echo ceiling`, measured: pairedRatio(results, 'echo', SET.id, top), goal: 0.9, atLeast: true },
    {
      label: "Set c=1: kv mean latency / etcd Put's",
      measured: pairedRatio(results, 'etcd', SET.id, 1, meanMs),
      goal: 1.0,
      atLeast: false,
    },
    {
      label: "Set c=1: kv mean latency / (echo's + one fsync + 0.1 ms)",
      measured: summarize(overFloor),
      goal: 1.0,
      atLeast: false,
      unjudged: fsyncProbeDisturbed(results) ? 'fsync probe disturbed (see below)' : undefined,
    },
    { label: `Get c=${top}: kv / echo ceiling`, measured: pairedRatio(results, 'echo', GET.id, top), goal: 0.95, atLeast: true },
  ];
}

function targetTable(results: BenchResults): string[] {
  const lines = ['| target | goal | measured: median (min–max over rounds) | |', '|---|---|---|---|'];
  for (const target of targets(results)) {
    const met = target.atLeast ? target.measured.median >= target.goal : target.measured.median <= target.goal;
    lines.push(
      `| ${target.label} | ${target.atLeast ? '≥' : '≤'} ${target.goal.toFixed(Number.isInteger(target.goal * 10) ? 1 : 2)}× | ${spread(target.measured, ratio)} | ${target.unjudged ?? (Number.isFinite(target.measured.median) ? (met ? 'met' : '**missed**') : '–')} |`,
    );
  }
  return lines;
}

function throughputTable(results: BenchResults): string[] {
  const lines = [
    '| workload | c | server | calls/s (h2load): median (min–max) | server CPU µs/call | p50 ms (h2load) | p50 ms (ghz) | p99 ms (ghz) | failed calls |',
    '|---|---:|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const workload of WORKLOADS) {
    for (const concurrency of results.settings.concurrencies) {
      for (const server of serversFor(workload, SERVERS)) {
        const these = runs(results, server, workload.id, concurrency);
        if (these.length === 0) continue;
        const median = (metric: (m: Measurement) => number): number => summarize(these.map(metric)).median;
        const failed = these.reduce((sum, m) => sum + m.throughput.failedCalls + m.latency.errors, 0);
        lines.push(
          `| ${workload.label} | ${concurrency} | ${serverLabel(workload, server)} | ${spread(summarize(these.map(okPerSec)), int)} | ${int(median(cpuPerCall))} | ${ms(median((m) => m.throughput.p50Ms))} | ${ms(median((m) => m.latency.p50Ms))} | ${ms(median((m) => m.latency.p99Ms))} | ${failed} |`,
        );
      }
    }
  }
  return lines;
}

function ratioTable(results: BenchResults): string[] {
  const lines = [
    '| workload | c | calls/s kv / etcd | calls/s kv / echo | CPU per call kv / etcd | CPU per call kv / echo |',
    '|---|---:|---|---|---|---|',
  ];
  for (const workload of WORKLOADS) {
    for (const concurrency of results.settings.concurrencies) {
      const cells = [
        pairedRatio(results, 'etcd', workload.id, concurrency),
        pairedRatio(results, 'echo', workload.id, concurrency),
        pairedRatio(results, 'etcd', workload.id, concurrency, cpuPerCall),
        pairedRatio(results, 'echo', workload.id, concurrency, cpuPerCall),
      ].map((summary) => spread(summary, ratio));
      lines.push(`| ${workload.label} | ${concurrency} | ${cells.join(' | ')} |`);
    }
  }
  return lines;
}

function readsBeforeWritesTable(results: BenchResults): string[] {
  const lines = [
    '| workload | c | server | calls/s (h2load): median (min–max) | server CPU µs/call | calls/s kv / this server | CPU per call, after writes / before |',
    '|---|---:|---|---|---:|---|---:|',
  ];
  for (const workload of WORKLOADS) {
    for (const server of serversFor(workload, SERVERS)) {
      const these = results.readsBeforeWrites.filter((m) => m.server === server && m.workload === workload.id);
      if (these.length === 0) continue;
      const concurrency = these[0].concurrency;
      const kvRuns = results.readsBeforeWrites.filter((m) => m.server === 'kv' && m.workload === workload.id);
      const ratios = these.flatMap((m) => {
        const kvRun = kvRuns.find((candidate) => candidate.round === m.round);
        return kvRun && m.throughput.okPerSec > 0 ? [kvRun.throughput.okPerSec / m.throughput.okPerSec] : [];
      });
      const cpuBefore = summarize(these.map((m) => m.throughput.serverCpuUsPerCall)).median;
      const cpuAfter = summarize(runs(results, server, workload.id, concurrency).map(cpuPerCall)).median;
      lines.push(
        `| ${workload.label} | ${concurrency} | ${serverLabel(workload, server)} | ${spread(summarize(these.map((m) => m.throughput.okPerSec)), int)} | ${int(cpuBefore)} | ${server === 'kv' ? '' : spread(summarize(ratios), ratio)} | ${ratio(cpuAfter / cpuBefore)} |`,
      );
    }
  }
  return lines;
}

/** The same runs' calls/s as each load generator saw them, at the highest concurrency. */
function toolTable(results: BenchResults): string[] {
  const top = Math.max(...results.settings.concurrencies);
  const lines = [
    `| workload (c=${top}) | server | calls/s, h2load (one key) | calls/s, ghz (many keys) | ghz / h2load |`,
    '|---|---|---:|---:|---:|',
  ];
  for (const workload of WORKLOADS) {
    for (const server of serversFor(workload, SERVERS)) {
      const these = runs(results, server, workload.id, top);
      if (these.length === 0) continue;
      const h2load = summarize(these.map(okPerSec)).median;
      const ghz = summarize(these.map((m) => m.latency.okPerSec)).median;
      lines.push(`| ${workload.label} | ${serverLabel(workload, server)} | ${int(h2load)} | ${int(ghz)} | ${ratio(ghz / h2load)} |`);
    }
  }
  return lines;
}

function scaleRuns(results: BenchResults, keys: number, server: ServerName, workload: string): ScaleMeasurement[] {
  return results.scale.filter((m) => m.keys === keys && m.server === server && m.workload === workload);
}

function scaleRatio(results: BenchResults, keys: number, workload: string): Summary {
  const ratios: number[] = [];
  for (const kvRun of scaleRuns(results, keys, 'kv', workload)) {
    const etcdRun = scaleRuns(results, keys, 'etcd', workload).find((m) => m.round === kvRun.round);
    if (etcdRun && etcdRun.throughput.okPerSec > 0) ratios.push(kvRun.throughput.okPerSec / etcdRun.throughput.okPerSec);
  }
  return summarize(ratios);
}

/** The server's start at the smallest size it started with: what it takes with (almost) no keys. */
function smallestStart(results: BenchResults, server: ServerName): ScaleStart | undefined {
  return results.scaleStarts.filter((s) => s.server === server && s.error === undefined).sort((a, b) => a.keys - b.keys)[0];
}

/** Bytes per key added between the smallest size and `start`, by `pick`. */
function perAddedKey(results: BenchResults, start: ScaleStart, pick: (start: ScaleStart) => number | undefined): number | undefined {
  const small = smallestStart(results, start.server);
  const base = small && pick(small);
  const now = pick(start);
  if (!small || base === undefined || now === undefined || start.keys <= small.keys) return undefined;
  return (now - base) / (start.keys - small.keys);
}

function scaleTable(results: BenchResults): string[] {
  const lines = [
    '| keys | server | preload | start-up | RSS after start-up | RSS per added key | peak RSS | on disk | on disk per key | Set calls/s | Get calls/s |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const keys of results.settings.scaleKeyCounts) {
    for (const start of results.scaleStarts.filter((s) => s.keys === keys)) {
      const rate = (workload: Workload): string => {
        const these = scaleRuns(results, keys, start.server, workload.id);
        return these.length > 0 ? spread(summarize(these.map((m) => m.throughput.okPerSec)), int) : '–';
      };
      const rss = start.memoryAfterStart?.rssBytes;
      const onDisk = start.etcdDbBytes !== undefined ? `${size(start.diskBytes)} (db ${size(start.etcdDbBytes)})` : size(start.diskBytes);
      const diskPerKey =
        start.etcdDbBytes !== undefined
          ? `${int(start.diskBytes / keys)} (db ${int(start.etcdDbBytes / keys)})`
          : int(start.diskBytes / keys);
      const rssPerKey = perAddedKey(results, start, (s) => s.memoryAfterStart?.rssBytes);
      lines.push(
        `| ${int(keys)} | ${start.server} | ${seconds(start.preloadMs)} | ${start.error ? `**failed**: ${start.error}` : seconds(start.startupMs)} | ${size(rss)} | ${rssPerKey !== undefined ? int(rssPerKey) : '–'} | ${size(start.peakRssBytes)} | ${onDisk} | ${diskPerKey} | ${rate(SET)} | ${rate(GET)} |`,
      );
    }
  }
  return lines;
}

function scaleRatioTable(results: BenchResults): string[] {
  const lines = [
    '| keys | Set calls/s kv / etcd | Get calls/s kv / etcd | start-up kv / etcd | RSS kv / etcd | on disk kv / etcd |',
    '|---:|---|---|---:|---:|---:|',
  ];
  for (const keys of results.settings.scaleKeyCounts) {
    const of = (server: ServerName): ScaleStart | undefined => results.scaleStarts.find((s) => s.keys === keys && s.server === server);
    const kv = of('kv');
    const etcd = of('etcd');
    const divide = (pick: (start: ScaleStart) => number | undefined): string => {
      const a = kv && pick(kv);
      const b = etcd && pick(etcd);
      return a !== undefined && b !== undefined && b > 0 ? ratio(a / b) : '–';
    };
    lines.push(
      `| ${int(keys)} | ${spread(scaleRatio(results, keys, SET.id), ratio)} | ${spread(scaleRatio(results, keys, GET.id), ratio)} | ${divide((s) => s.startupMs)} | ${divide((s) => s.memoryAfterStart?.rssBytes)} | ${divide((s) => s.diskBytes)} |`,
    );
  }
  return lines;
}

/** What stops each server holding more keys, from this run's own figures. */
function boundsText(results: BenchResults): string[] {
  const lines: string[] = [];
  const heap = results.machine.nodeHeapLimitBytes;
  const failed = results.scaleStarts.filter((s) => s.error !== undefined);
  for (const failure of failed) lines.push(`- **${failure.server} with ${int(failure.keys)} keys did not run**: ${failure.error}.`);

  const largest = (server: ServerName): ScaleStart | undefined =>
    results.scaleStarts.filter((s) => s.server === server && s.error === undefined).sort((a, b) => b.keys - a.keys)[0];
  const keysPerSec = (start: ScaleStart): string => int(start.keys / ((start.startupMs ?? Number.NaN) / 1000));

  const kv = largest('kv');
  const kvHeap = kv && perAddedKey(results, kv, (s) => s.kvHeapUsedBytes);
  const kvRss = kv && perAddedKey(results, kv, (s) => s.memoryAfterStart?.rssBytes);
  if (kv && kvHeap !== undefined && kvRss !== undefined) {
    const memory = results.machine.memoryGiB * 2 ** 30;
    lines.push(
      `- **kv: memory.** Every key's entry is held in memory: the newest checkpoint's key table, read at start-up into large Buffers outside the V8 heap, and the keys changed since that checkpoint (at most about an eighth of them before the next one), as JS objects in the heap. Here that came to ${int(kvRss)} bytes of RSS per key, so this machine's ${results.machine.memoryGiB} GiB hold at most about ${about(memory / kvRss)} keys of this size. The V8 heap (its limit ${size(heap)} with node's default flags) no longer bounds it: ${kvHeap < 1 ? `the preloading process, after its last checkpoint, held no more heap with ${int(kv.keys)} keys than with ${int(Math.min(...results.settings.scaleKeyCounts))}` : `the preloading process, after its last checkpoint, held ${int(kvHeap)} bytes of heap per key`}. Start-up loads the checkpoint and replays the logs written after it: ${seconds(kv.startupMs)} for ${int(kv.keys)} keys (${keysPerSec(kv)} keys/s) after a quiet stop; a stop in the middle of a checkpoint replays more (bench:store --worst-case measures the longest replay). The server does not answer until then.`,
    );
  }
  const etcd = largest('etcd');
  const etcdDb = etcd && perAddedKey(results, etcd, (s) => s.etcdDbBytes);
  const etcdRss = etcd && perAddedKey(results, etcd, (s) => s.memoryAfterStart?.rssBytes);
  if (etcd && etcdDb !== undefined && etcdRss !== undefined) {
    lines.push(
      `- **etcd: its backend quota, then memory.** Its bbolt file took ${int(etcdDb)} bytes per key, so etcd's default \`--quota-backend-bytes\` (2 GiB) is full near ${about(2 ** 31 / etcdDb)} keys of this size (fewer with history: every overwrite keeps its old revision until compacted), after which etcd refuses writes (NOSPACE alarm); these runs raised the quota to ${size(results.settings.etcdQuotaBackendBytes)}, etcd's largest recommended, near ${about(results.settings.etcdQuotaBackendBytes / etcdDb)} keys. Its resident memory grew by ${int(etcdRss)} bytes per key (the key index in the Go heap plus the database pages mapped in). Start-up rebuilds the key index from the database: ${seconds(etcd.startupMs)} for ${int(etcd.keys)} keys (${keysPerSec(etcd)} keys/s).`,
    );
  }
  return lines;
}

function compareSection(results: BenchResults): string[] {
  if (results.comparison.length === 0) return [];
  const { settings, fsync } = results;
  const setP50 = (server: ServerName): string => ms(summarize(runs(results, server, SET.id, 1).map((m) => m.throughput.p50Ms)).median);
  const rounds = plural(settings.rounds, 'round');
  const fsyncRounds = results.fsyncByRound ?? [];
  // A durable Set cannot beat one fdatasync on a quiet disk; when it "does", the probe met a busy one.
  const fsyncBusy =
    summarize(runs(results, 'kv', SET.id, 1).map((m) => m.throughput.p50Ms)).median <
    summarize(fsyncRounds.map((round) => round.median)).median;
  return [
    '## Targets',
    '',
    ...targetTable(results),
    '',
    'These are the goals for kv in one process; those for `--workers 2` are judged under [Several processes](#several-processes---workers).',
    '',
    `One fsync on this disk (100-byte write over zeros written ahead, as the log writer does, + fdatasync; median of ${fsync.count}): **${ms(fsync.median)} ms** (p99 ${ms(fsync.p99)} ms) at the start of the run${fsyncRounds.length > 0 ? `; at the start of each round (median of ${fsyncRounds[0].count}): ${fsyncRounds.map((round) => `${ms(round.median)} ms`).join(', ')}` : ''}. Set at c=1, per-call p50 from h2load: kv ${setP50('kv')} ms, etcd ${setP50('etcd')} ms, echo ${setP50('echo')} ms.${fsyncBusy ? " **kv's Set, fdatasync included, was faster than the fsync probe**: the shared disk was busier at the moments the probe ran than over the Set runs, so in this run the fsync target measures the neighbours, not kv." : ''}`,
    '',
    `![Throughput of kv, etcd and the grpc-js echo server at concurrency ${settings.concurrencies.join(', ')}, measured with h2load](${COMPARE_CHART})`,
    '',
    '## Throughput and latency',
    '',
    `Median over ${rounds} (min–max in brackets); p50/p99 are the medians of each run's percentiles. Calls/s and server CPU come from h2load runs of about ${settings.durationSec} s on one key; the ghz columns from ${settings.latencySec} s runs over ${int(settings.keySpace)} keys right after. Server CPU is the server process's user+system time (all threads) per successful call: less sensitive to noisy neighbours than throughput, and it shows where a server spends its core. Failed calls counts both tools' failures.`,
    '',
    ...throughputTable(results),
    '',
    '## Ratios',
    '',
    'kv divided by the other server, from the h2load runs, computed within each round (runs moments apart), then the median and range over rounds. Throughput: above 1× kv is faster. CPU per call: below 1× kv spends less server CPU per call; its inverse is roughly the throughput ratio to expect where server CPU, not the shared machine or the client, is the limit.',
    '',
    ...ratioTable(results),
    '',
    '### Reads before any write',
    '',
    `The Get rows above follow the Set runs of the same round, as reads follow writes in use. etcd 3.4 copies its backend's read buffer on every serializable read, and that buffer keeps the size the last burst of writes gave it (etcd 3.5 shares one copy between reads: [etcd-io/etcd#12933](https://github.com/etcd-io/etcd/pull/12933)), so once it has taken writes each Range costs it more CPU. The same reads on the servers just started, before any write (${plural(settings.rounds, 'round')} of about ${settings.durationSec} s, rotated):`,
    '',
    ...readsBeforeWritesTable(results),
    '',
    '## Why two load generators',
    '',
    `The same servers in the same rounds, as each tool measured them. ghz needs much more CPU per call than the servers it drives; on two shared cores it takes CPU from the server under test, and the faster the server the more it loses, so ghz compresses the differences between servers. h2load costs little, but sends one fixed body, so it cannot vary keys: hence h2load for calls/s and ghz for latency over many keys.`,
    '',
    ...toolTable(results),
    '',
    '### Method of the comparison',
    '',
    ...compareMethod(results),
    '',
  ];
}

/** How the comparison ran: its servers, clients, workloads and schedule. */
function compareMethod(results: BenchResults): string[] {
  const { settings, machine } = results;
  return [
    `- **Servers**, started by the script on loopback: kv-server (\`node dist/main.js --fsync always --log-level warn\`, started by the same helper the tests use); etcd, single member, default settings (its Put is durable: the WAL is fdatasynced before it answers); and \`bench/echo-server.ts\`, a grpc-js server whose methods take kv's own SetRequest/GetRequest and return the request bytes unchanged, with no protobuf decoding — the most any grpc-js server can do here (kv's unary calls do not go through grpc-js's call layer, see above). kv and etcd were each first loaded with ${int(settings.keySpace)} keys.`,
    `- **Clients**: both tools use one HTTP/2 connection with ${settings.concurrencies.join(', ')} calls in flight, as one application instance with one channel would; they share the ${machine.cpus} cores with the server under test, and every server pays that equally. h2load's request bodies are built by the bench (a 5-byte gRPC frame header and the protobuf message, encoded by kv's generated code or, for etcd, from bench/proto/etcd-rpc.proto) and posted with \`content-type: application/grpc\` and \`te: trailers\`. Each h2load run sends a fixed number of calls, set from the rate measured just before so that it lasts about ${settings.durationSec} s: only a run that ends with no call in flight can be checked call for call.`,
    `- **Workloads**: ${WORKLOADS.map(
      (workload) =>
        `${workload.label} (${serversFor(workload, SERVERS)
          .map((server) => serverLabel(workload, server))
          .join(', ')})`,
    ).join(
      '; ',
    )}. Set writes a ${settings.valueBytes}-byte JSON object (kv and echo: as google.protobuf.Value; etcd: the same JSON text as the value bytes). etcd's Range is \`serializable\`, served from the member's own state, the read comparable to kv's Get. ghz cycles through a fixed seeded shuffle of the keys rather than its per-call template functions, which would spend its CPU on templating and JSON-to-protobuf conversion.`,
    `- **Schedule**: all three servers up at once; a ${settings.warmupSec} s h2load warm-up per server, workload and concurrency; then ${plural(settings.rounds, 'round')}, each workload and concurrency run against the servers one after another (h2load, then ghz), the order rotated each round (A B C, B C A, C A B). Ratios are taken within a round. Calls still in flight when a timed ghz run ends are cut off by ghz and not counted as failures.`,
    `- **Versions**: Node ${results.versions.node}, @grpc/grpc-js ${results.versions.grpcJs}, etcd ${results.versions.etcd}, h2load ${results.versions.h2load}, ghz ${results.versions.ghz}.`,
  ];
}

function scaleSection(results: BenchResults): string[] {
  if (results.scaleStarts.length === 0) return [];
  const { settings } = results;
  const rounds = plural(settings.rounds, 'round');
  return [
    '## Scale of data',
    '',
    `kv and etcd holding the same keys (\`k0\`…, each the same ${settings.valueBytes}-byte JSON value), from ${int(Math.min(...settings.scaleKeyCounts))} to ${int(Math.max(...settings.scaleKeyCounts))}. For each size both data directories were filled first — kv through its store API in a separate process (\`openFileStore\`, fsync never; closed once the checkpoint its writes set off was written), etcd over its own gRPC API with Txns of 128 Puts on an etcd started for the purpose and stopped — then a fresh server was started on each: start-up is spawn to ready, i.e. mostly recovering the data directory. RSS right after start-up; peak RSS over the server's life (VmHWM); on disk right after the preload (etcd: its whole data directory, with its preallocated 64 MiB WAL segments, and its bbolt file alone). Then Set and Get on one of the loaded keys (a different one per round), h2load at c=${settings.scaleConcurrency}, kv and etcd alternating, ${rounds}. Each size ran alone on the machine. etcd ran with \`--quota-backend-bytes\` ${size(settings.etcdQuotaBackendBytes)} here, the most etcd recommends, so that no size runs into its 2 GiB default (see below). RSS per added key is the growth over the smallest size, divided by the keys added.`,
    '',
    ...scaleTable(results),
    '',
    'kv divided by etcd at each size (calls/s within each round):',
    '',
    ...scaleRatioTable(results),
    '',
    '### What bounds the largest size',
    '',
    ...boundsText(results),
    '',
  ];
}

/** Measured by hand, apart from `npm run bench`: each in a page of its own, with the commands that repeat it. */
const BY_HAND_SECTIONS = [
  '## HTTP/1.1 JSON',
  '',
  "Not part of `npm run bench` yet: kv's HTTP port (Connect, JSON over HTTP/1.1) beside its gRPC port and etcd's JSON gateway was measured by hand, with the commands to repeat it, in [benchmarks-http.md](benchmarks-http.md).",
  '',
  "## Set's hot path, before and after",
  '',
  "Not part of `npm run bench`: Set and Get of kv before and after the work on Set's hot path, side by side with etcd and the echo server (`bench/compare-builds.ts`), kv's own CPU per Set without the network (`bench/set-path-cpu.ts`), and what bounds Set, measured by hand in [benchmarks-set-path.md](benchmarks-set-path.md).",
  '',
];

const SECTIONS: Array<{ part: Part; title: string; render: (results: BenchResults) => string[] }> = [
  { part: 'compare', title: 'Targets', render: compareSection },
  { part: 'watch', title: 'Watch', render: watchSection },
  { part: 'txn', title: 'Transactions and time to live', render: txnSection },
  { part: 'tls', title: 'TLS', render: tlsSection },
  { part: 'engine', title: 'The etcd engine', render: engineSection },
  { part: 'workers', title: 'Several processes (--workers)', render: workersSection },
  { part: 'store', title: 'The store engine before and after the write-path redesign', render: storeSection },
  { part: 'scale', title: 'Scale of data', render: scaleSection },
];

/** A heading's anchor as GitHub makes it. */
const anchor = (title: string): string =>
  `#${title
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-')}`;

/**
 * The report from one or more runs (each part from the latest run that has
 * it) and, for the parts none of them ran, the sections `kept` from the
 * report already there.
 */
export function renderReport(runs: readonly BenchResults[], kept: Partial<Record<Part, string[]>> = {}): string {
  if (runs.length === 0) throw new Error('no benchmark results to render');
  const latest = [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt))[runs.length - 1];
  const { machine, versions, settings } = latest;
  const byPart = runsByPart(runs);
  const blocks = new Map<Part, string[]>();
  for (const { part, render } of SECTIONS) {
    const run = byPart[part];
    const block = run ? partBlock(part, run, render(run)) : kept[part];
    if (block && block.length > 0) blocks.set(part, block);
  }
  const body = (parts: Part[]): string[] => parts.flatMap((part) => blocks.get(part) ?? []);
  const contents = [
    ...SECTIONS.filter(({ part }) => part !== 'scale' && blocks.has(part)).map(({ title }) => [title, anchor(title)]),
    ['HTTP/1.1 JSON', '#http11-json'],
    ["Set's hot path", '#sets-hot-path-before-and-after'],
    ...(blocks.has('scale') ? [['Scale of data', '#scale-of-data']] : []),
    ['Method', '#method'],
  ];
  const lines: string[] = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\`, part by part: each section says, under its heading, which run measured it and which code of kv (the newest commit that changed src/; a run of some parts replaces their sections and leaves the others as they were). kv is compared with what a user would otherwise run — etcd — and, for plain Set and Get, with the ceiling of grpc-js, a grpc-js server that echoes its request. (kv reads and answers its unary calls straight off Node's HTTP/2 stream, in front of grpc-js's call layer — src/server/unary-over-http2.ts — so it can pass that ceiling; a bare \`node:http2\` echo answered 1.36–1.44× the grpc-js echo's calls/s here: [benchmarks-set-path.md](benchmarks-set-path.md#unary-calls-framed-off-the-http2-stream).) Every part ran its servers on the same machine in the same run, interleaved; these machines are shared and noisy, so **the ratios are the result**, the absolute numbers only describe their run.`,
    '',
    `Sections: ${contents.map(([title, link]) => `[${title}](${link})`).join(' · ')}`,
    '',
    'Which tool produced which number:',
    '',
    `- **calls/s and server CPU per call: [h2load](https://nghttp2.org/documentation/h2load-howto.html)** (${versions.h2load}, written in C), which costs the ${machine.cpus} shared cores so little per call that the number is the server's. It posts one prebuilt request body (one key) per run. It counts HTTP statuses only and gRPC reports errors with HTTP 200, so every run is checked: its exact body is first sent once and must answer grpc-status 0, and after a run of writes the key's version (kv Get, etcd Range) must have grown by exactly the number of calls h2load counted; calls that did not write are counted as failed and left out of calls/s. (The echo server keeps nothing, so for it the first check is the only one.)`,
    `- **Latency percentiles of the comparison: [ghz](https://ghz.sh)** (${versions.ghz}, a Go gRPC client), over ${int(settings.keySpace)} different keys. ghz spends much more CPU per call than h2load, so at high concurrency its own work on the shared cores inflates latency and pulls every server toward the same calls/s (see [the two tools side by side](#why-two-load-generators)); its percentiles still rank the servers under the same client. h2load's own per-call p50 and p99 (one key) are given too, and are the only latencies of the other h2load parts.`,
    "- **One fsync**: a 100-byte write and fdatasync (over zeros written ahead, as kv's log writer writes), timed in-process on the data directories' filesystem in the same run: at its start, and again at the start of each round, whose Set c=1 runs it is the floor for.",
    '- **Watch, lease per key, lease expiry**: Node clients of the bench (bench/watch-client.ts, bench/watch-load.ts, bench/txn.ts) over node:http2, timing with the monotonic clock.',
    "- **Store before and after**: `npm run bench:store`'s own table, from each checkout.",
    '- **Scale**: h2load calls/s on one of the loaded keys; memory from /proc (VmRSS, VmHWM); disk as blocks allocated, like `du`.',
    '',
    ...body(['compare', 'watch', 'txn', 'tls', 'engine', 'workers', 'store']),
    ...BY_HAND_SECTIONS,
    ...body(['scale']),
    '## Machine and versions',
    '',
    `- ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.kernel}; data directories on ${machine.dataFilesystem} (the OS temp directory); node's default heap limit ${size(machine.nodeHeapLimitBytes)}`,
    `- Node ${versions.node}, @grpc/grpc-js ${versions.grpcJs}, etcd ${versions.etcd}, h2load ${versions.h2load}, ghz ${versions.ghz} in the latest run; kv's commit is under each section's heading`,
    '',
    '## Method',
    '',
    `- **Every part** starts its own servers on loopback, fresh, and runs them side by side: all up at once, a warm-up, then its rounds with the order rotated each round; ratios are taken within a round (runs moments apart), then the median and range over rounds. Each section says what it runs; the comparison's own method is [under it](#method-of-the-comparison).`,
    '- **Not measured here**, outside [Several processes](#several-processes---workers): clients over several connections; several kv-server processes behind one port.',
    '',
    'Reproduce: `bash scripts/install-bench-tools.sh && npm run build && npm run bench` (about an hour; `npm run bench -- --parts watch,txn` runs some parts only and keeps the other sections; `npm run bench -- --parts store --store-base DIR` compares the store engine with another checkout; `npm run bench -- --quick` is a smoke run of a few minutes that writes to bench/results/ instead of docs/).',
    '',
  ];
  return lines.join('\n');
}
