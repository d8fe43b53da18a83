/** Renders a benchmark run as docs/benchmarks.md. */
import type { BenchResults, Measurement } from './results';
import { summarize, type Summary } from './stats';
import { OPERATIONS, SERVERS, type Operation, type ServerName } from './workloads';

const OP_LABEL: Record<Operation, string> = { set: 'Set', get: 'Get' };

const int = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const ms = (value: number): string => (Number.isFinite(value) ? (value < 10 ? value.toFixed(2) : value.toFixed(1)) : '–');
const ratio = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–');
const spread = (summary: Summary, format: (value: number) => string): string =>
  summary.count > 1 ? `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})` : format(summary.median);

function runs(results: BenchResults, server: ServerName, operation: Operation, concurrency: number): Measurement[] {
  return results.comparison.filter((m) => m.server === server && m.operation === operation && m.concurrency === concurrency);
}

/** kv divided by `other`, round by round (only runs measured moments apart are compared), summarized. */
export function pairedRatio(
  results: BenchResults,
  other: ServerName,
  operation: Operation,
  concurrency: number,
  metric: (m: Measurement) => number = (m) => m.okPerSec,
): Summary {
  const ratios: number[] = [];
  for (const kvRun of runs(results, 'kv', operation, concurrency)) {
    const otherRun = runs(results, other, operation, concurrency).find((m) => m.round === kvRun.round);
    if (otherRun && metric(otherRun) > 0) ratios.push(metric(kvRun) / metric(otherRun));
  }
  return summarize(ratios);
}

const cpuPerCall = (m: Measurement): number => m.serverCpuUsPerCall;

function kvSetP50(results: BenchResults): Summary {
  return summarize(runs(results, 'kv', 'set', 1).map((m) => m.p50Ms));
}

interface Target {
  label: string;
  measured: Summary;
  goal: number;
  /** true when higher is better (throughput ratios), false for latency ratios. */
  atLeast: boolean;
}

function targets(results: BenchResults): Target[] {
  const top = Math.max(...results.settings.concurrencies);
  const fsyncRatio = summarize(runs(results, 'kv', 'set', 1).map((m) => m.p50Ms / results.fsync.median));
  return [
    { label: `Set c=${top}: kv / etcd Put`, measured: pairedRatio(results, 'etcd', 'set', top), goal: 1.0, atLeast: true },
    { label: `Set c=${top}: kv / echo ceiling`, measured: pairedRatio(results, 'echo', 'set', top), goal: 0.8, atLeast: true },
    { label: `Get c=${top}: kv / etcd serializable Range`, measured: pairedRatio(results, 'etcd', 'get', top), goal: 1.3, atLeast: true },
    { label: `Get c=${top}: kv / echo ceiling`, measured: pairedRatio(results, 'echo', 'get', top), goal: 0.9, atLeast: true },
    { label: 'Set c=1: kv p50 / one fsync', measured: fsyncRatio, goal: 1.5, atLeast: false },
  ];
}

function targetTable(results: BenchResults): string[] {
  const lines = ['| target | goal | measured: median (min–max over rounds) | |', '|---|---|---|---|'];
  for (const target of targets(results)) {
    const met = target.atLeast ? target.measured.median >= target.goal : target.measured.median <= target.goal;
    lines.push(
      `| ${target.label} | ${target.atLeast ? '≥' : '≤'} ${target.goal.toFixed(1)}× | ${spread(target.measured, ratio)} | ${Number.isFinite(target.measured.median) ? (met ? 'met' : '**missed**') : '–'} |`,
    );
  }
  return lines;
}

function throughputTable(results: BenchResults): string[] {
  const lines = [
    '| workload | c | server | calls/s: median (min–max) | p50 ms | p99 ms | server CPU µs/call | failed calls |',
    '|---|---:|---|---|---:|---:|---:|---:|',
  ];
  for (const operation of OPERATIONS) {
    for (const concurrency of results.settings.concurrencies) {
      for (const server of SERVERS) {
        const these = runs(results, server, operation, concurrency);
        if (these.length === 0) continue;
        const name = server === 'etcd' ? `etcd (${operation === 'set' ? 'Put' : 'Range, serializable'})` : server;
        lines.push(
          `| ${OP_LABEL[operation]} | ${concurrency} | ${name} | ${spread(summarize(these.map((m) => m.okPerSec)), int)} | ${ms(summarize(these.map((m) => m.p50Ms)).median)} | ${ms(summarize(these.map((m) => m.p99Ms)).median)} | ${int(summarize(these.map((m) => m.serverCpuUsPerCall)).median)} | ${these.reduce((sum, m) => sum + m.errors, 0)} |`,
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
  for (const operation of OPERATIONS) {
    for (const concurrency of results.settings.concurrencies) {
      const cells = [
        pairedRatio(results, 'etcd', operation, concurrency),
        pairedRatio(results, 'echo', operation, concurrency),
        pairedRatio(results, 'etcd', operation, concurrency, cpuPerCall),
        pairedRatio(results, 'echo', operation, concurrency, cpuPerCall),
      ].map((summary) => spread(summary, ratio));
      lines.push(`| ${OP_LABEL[operation]} | ${concurrency} | ${cells.join(' | ')} |`);
    }
  }
  return lines;
}

function scalingTable(results: BenchResults): string[] {
  const lines = [
    `| keys loaded | preload (in-process) | kv-server start-up | Set calls/s (c=${results.settings.scalingConcurrency}) | Set p99 ms | Get calls/s (c=${results.settings.scalingConcurrency}) | Get p99 ms |`,
    '|---:|---:|---:|---|---:|---|---:|',
  ];
  for (const { keys, preloadMs, startupMs } of results.scalingStartup) {
    const of = (operation: Operation) => results.scaling.filter((m) => m.keys === keys && m.operation === operation);
    const set = of('set');
    const get = of('get');
    lines.push(
      `| ${int(keys)} | ${int(preloadMs)} ms | ${int(startupMs)} ms | ${spread(summarize(set.map((m) => m.okPerSec)), int)} | ${ms(summarize(set.map((m) => m.p99Ms)).median)} | ${spread(summarize(get.map((m) => m.okPerSec)), int)} | ${ms(summarize(get.map((m) => m.p99Ms)).median)} |`,
    );
  }
  return lines;
}

export function renderReport(results: BenchResults, chartFile: string): string {
  const { settings, machine, versions, fsync } = results;
  const etcdSetP50 = summarize(runs(results, 'etcd', 'set', 1).map((m) => m.p50Ms)).median;
  const lines: string[] = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\`${settings.quick ? ' **--quick (smoke run: short, one round; not for publishing)**' : ''} on ${results.startedAt.slice(0, 10)}; the run took ${Math.round(results.elapsedSec / 60)} min.`,
    'kv is compared with what a user would otherwise run — etcd — and with the ceiling of its own stack, a grpc-js server that echoes its request. All three ran on the same machine in the same run, interleaved; these machines are shared and noisy, so **the ratios are the result**, the absolute numbers only describe this run.',
    '',
    '## Targets',
    '',
    ...targetTable(results),
    '',
    `One fsync on this disk (100-byte append + fdatasync, median of ${fsync.count}): **${ms(fsync.median)} ms** (p99 ${ms(fsync.p99)} ms). kv Set at c=1: p50 ${ms(kvSetP50(results).median)} ms; etcd Put at c=1: p50 ${ms(etcdSetP50)} ms.`,
    '',
    `![Throughput of kv, etcd and the grpc-js echo server for Set and Get at concurrency ${settings.concurrencies.join(', ')}](${chartFile})`,
    '',
    '## Throughput and latency',
    '',
    `Median over ${settings.rounds} round${settings.rounds === 1 ? '' : 's'} (min–max in brackets); p50/p99 are the medians of each run's percentiles. Server CPU is the server process's user+system time (all threads) per successful call: less sensitive to noisy neighbours than throughput, and it shows where a server spends its core.`,
    '',
    ...throughputTable(results),
    '',
    '## Ratios',
    '',
    'kv divided by the other server, computed within each round (runs moments apart), then the median and range over rounds. Throughput: above 1× kv is faster. CPU per call: below 1× kv spends less server CPU per call; its inverse is roughly the throughput ratio to expect where server CPU, not the shared machine or the client, is the limit.',
    '',
    ...ratioTable(results),
    '',
    '## Scaling with the number of keys',
    '',
    `kv alone, with ${int(Math.min(...settings.scalingKeyCounts))} to ${int(Math.max(...settings.scalingKeyCounts))} keys loaded: Set overwrites and Get reads random keys among those loaded, at c=${settings.scalingConcurrency}, ${settings.rounds} interleaved round${settings.rounds === 1 ? '' : 's'}. The data directories were written in-process through the store API (\`openFileStore\`, fsync never, then closed), then opened by a real kv-server; start-up is spawn to "listening", i.e. mostly recovery of the log.`,
    '',
    ...scalingTable(results),
    '',
    '## Machine and versions',
    '',
    `- ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.kernel}; data directories on ${machine.dataFilesystem} (the OS temp directory)`,
    `- Node ${versions.node}, @grpc/grpc-js ${versions.grpcJs}, etcd ${versions.etcd}, ghz ${versions.ghz}, kv ${versions.kv}`,
    '',
    '## Method',
    '',
    `- **Servers**, started by the script on loopback: kv-server (\`node dist/main.js --fsync always --log-level warn\`, fresh temp data directory); etcd, single member, fresh temp data directory, default settings (its Put is durable: the WAL is fdatasynced before it answers); and \`bench/echo-server.ts\`, a grpc-js server whose methods take kv's own SetRequest/GetRequest and return the request bytes unchanged, with no protobuf decoding — the most any grpc-js server can do here.`,
    `- **Load generator**: [ghz](https://ghz.sh) ${versions.ghz}, one HTTP/2 connection, \`--concurrency\` ${settings.concurrencies.join(', ')}. Not a grpc-js client: on these machines it saturates long before the servers do. ghz shares the ${machine.cpus} cores with the server under test, and every server pays that equally.`,
    `- **Workloads**: Set writes a ${settings.valueBytes}-byte JSON object (kv and echo: as google.protobuf.Value; etcd: the same JSON text as the value bytes) to keys drawn from a ${int(settings.keySpace)}-key space; Get reads existing keys (kv and etcd were first loaded with all ${int(settings.keySpace)} keys; etcd's Range is \`serializable\`, served locally). Keys follow a fixed seeded shuffle of the key space that ghz cycles through, rather than ghz's per-call template functions, which would spend the client's CPU on templating and JSON-to-protobuf conversion.`,
    `- **Schedule**: all three servers up at once; a ${settings.warmupSec} s warm-up per server and workload; then ${settings.rounds} round${settings.rounds === 1 ? '' : 's'} of ${settings.durationSec} s runs, each workload and concurrency run against the servers one after another, the order rotated each round (A B C, B C A, C A B). Ratios are taken within a round. Calls still in flight when a timed run ends are cut off by ghz and not counted as failures.`,
    '- **Not measured here**: the store engine in isolation (`npm run bench:store`), multi-connection clients, TLS.',
    '',
    'Reproduce: `bash scripts/install-bench-tools.sh && npm run build && npm run bench` (about 15 minutes; `npm run bench -- --quick` for a smoke run that writes to bench/results/ instead of docs/).',
    '',
  ];
  return lines.join('\n');
}
