/**
 * `npm run bench`: kv side by side with etcd, every part in one run,
 * written to docs/benchmarks.md with its charts (about an hour):
 *
 *   compare  kv vs etcd vs the grpc-js echo ceiling, Set and Get at c=1/16/64
 *            (calls/s from h2load, latency from ghz)
 *   scale    kv and etcd holding 1k to 10M keys
 *   watch    watchers: events/s and write-to-event latency with 1/100/1000
 *            watchers, CPU per write beside 0/100/1000 idle watchers
 *   txn      Txn (2 compares + 2 sets), TTL-set vs etcd lease + put, lease expiry lateness
 *   tls      Set/Get over TLS (kv with a bearer token) vs plaintext, kv and etcd
 *   engine   kv over a 3-member etcd (1 and 2 frontends) vs etcd itself vs the file engine
 *   workers  kv in one process vs kv --workers 2 vs etcd vs echo, Set and Get at c=64
 *            over one connection and over four
 *   store    `npm run bench:store` on another checkout and on this one, alternating
 *            (only with --store-base)
 *
 *   --quick           smoke run: short runs, one round, small key counts;
 *                     writes to bench/results/ so docs/ keeps the real run
 *   --parts LIST      run only these parts (default: all; store needs --store-base);
 *                     the report keeps the other parts' sections as they were
 *   --rounds N        interleaved rounds (default 3)
 *   --duration S      seconds an h2load run aims for (default 8)
 *   --scale-keys LIST key counts for the scale runs (default 1000,100000,1000000,10000000)
 *   --store-base DIR  a checkout of the commit to compare the store bench against, node_modules installed
 *   --store-sizes L   key counts for the store bench (default 1000,1000000)
 *   --store-runs N    store bench runs of each checkout, alternating (default 2)
 *   --out DIR         where benchmarks.md/.svg go
 *   --render FILES    re-render the report from saved results JSON (comma-separated;
 *                     each part from the latest run that has it), run nothing
 *
 * Needs `npm run build` (kv is benchmarked as dist/main.js) and
 * scripts/install-bench-tools.sh (h2load, ghz, etcd).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { renderBarChart, type BarChart } from './bar-chart-svg';
import { renderChart } from './chart-svg';
import { runComparison } from './compare';
import { measureFsyncCost } from './fsync-cost';
import { ghzBinary } from './ghz';
import { describeMachine, describeVersions } from './machine';
import { elapsedSec, log } from './progress';
import { COMPARE_CHART, renderReport } from './report';
import { readPartBlocks, runsByPart } from './report-parts';
import { ENGINE_CHART, engineChart } from './report-engine';
import { TLS_CHART, tlsChart } from './report-tls';
import { TXN_CHART, txnChart } from './report-txn';
import { WATCH_CHART, watchChart } from './report-watch';
import { runEngine } from './etcd-engine';
import { PARTS, type BenchResults, type Part, type Settings } from './results';
import { runScale } from './scale';
import { runStoreBeforeAfter } from './store-before-after';
import { runTls } from './tls';
import { runTxn } from './txn';
import { runWatch } from './watch';
import { runWorkers, WORKERS_DEFAULTS, workersOptions } from './workers';
import { makeTempDir, REPO_ROOT } from './servers';
import { VALUE_BYTES } from './workloads';

interface Flags {
  quick: boolean;
  parts?: Part[];
  rounds?: number;
  durationSec?: number;
  scaleKeys?: number[];
  storeBase?: string;
  storeSizes?: number[];
  storeRuns?: number;
  out?: string;
  render?: string;
}

function positiveList(flag: string, text: string): number[] {
  const numbers = text.split(',').map((part) => Number(part));
  if (numbers.some((number) => !Number.isInteger(number) || number < 1))
    throw new Error(`${flag} needs positive integers, e.g. 1000,100000`);
  return numbers;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { quick: false };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    const value = (): string => {
      const next = argv[++index];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const positive = (): number => {
      const number = Number(value());
      if (!Number.isInteger(number) || number < 1) throw new Error(`${flag} needs a positive integer`);
      return number;
    };
    if (flag === '--quick') flags.quick = true;
    else if (flag === '--rounds') flags.rounds = positive();
    else if (flag === '--duration') flags.durationSec = positive();
    else if (flag === '--scale-keys') flags.scaleKeys = positiveList(flag, value());
    else if (flag === '--store-sizes') flags.storeSizes = positiveList(flag, value());
    else if (flag === '--store-runs') flags.storeRuns = positive();
    else if (flag === '--store-base') flags.storeBase = path.resolve(value());
    else if (flag === '--parts') {
      const parts = value().split(',');
      const unknown = parts.filter((part) => !(PARTS as readonly string[]).includes(part));
      if (unknown.length > 0) throw new Error(`--parts: unknown ${unknown.join(', ')} (known: ${PARTS.join(', ')})`);
      flags.parts = parts as Part[];
    } else if (flag === '--out') flags.out = value();
    else if (flag === '--render') flags.render = value();
    else throw new Error(`unknown flag ${flag} (see the top of bench/run.ts)`);
  }
  return flags;
}

function settingsFor(flags: Flags): Settings {
  return {
    quick: flags.quick,
    durationSec: flags.durationSec ?? (flags.quick ? 1 : 8),
    latencySec: flags.quick ? 1 : 4,
    warmupSec: flags.quick ? 1 : 2,
    rounds: flags.rounds ?? (flags.quick ? 1 : 3),
    concurrencies: flags.quick ? [1, 64] : [1, 16, 64],
    keySpace: 10_000,
    valueBytes: VALUE_BYTES,
    scaleKeyCounts: flags.scaleKeys ?? (flags.quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000, 10_000_000]),
    scaleConcurrency: 64,
    // etcd's largest recommended quota (8 GiB); its 2 GiB default fills before ten million of these keys.
    etcdQuotaBackendBytes: 8 * 2 ** 30,
    parts: flags.parts ?? PARTS.filter((part) => part !== 'store' || flags.storeBase !== undefined),
    watch: {
      watcherCounts: [1, 100, 1000],
      idleWatcherCounts: [0, 100, 1000],
      writerConcurrency: 16,
      idleConcurrency: 64,
    },
    txn: { concurrency: 64, ttlMs: 600_000, expiryKeys: flags.quick ? 200 : 1000, expiryTtlMs: 2000, expirySpreadMs: 1000 },
    tlsConcurrency: 64,
    engineConcurrency: 64,
    workers: WORKERS_DEFAULTS,
    store:
      flags.storeBase !== undefined
        ? {
            baseDir: flags.storeBase,
            sizes: flags.storeSizes ?? (flags.quick ? [1000] : [1000, 1_000_000]),
            runsEach: flags.storeRuns ?? (flags.quick ? 1 : 2),
          }
        : undefined,
  };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Fails early, with the fix, rather than ten minutes in. */
function checkPrerequisites(): void {
  const entry = path.join(REPO_ROOT, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error('dist/main.js is missing: run `npm run build` first');
  if (newestMtime(path.join(REPO_ROOT, 'src')) > statSync(entry).mtimeMs) {
    log('warning: src/ has changes newer than dist/main.js; run `npm run build` to benchmark them');
  }
  for (const [tool, args] of [
    ['h2load', ['--version']],
    [ghzBinary(), ['--help']],
    ['etcd', ['--version']],
  ] as const) {
    try {
      execFileSync(tool, [...args], { stdio: 'ignore' });
    } catch {
      throw new Error(`${path.basename(tool)} not found: run \`bash scripts/install-bench-tools.sh\``);
    }
  }
}

/**
 * Writes benchmarks.md and the charts from `runs` (each part from the latest
 * run that has it); the sections of parts none of them ran are carried over
 * from the benchmarks.md already in `outDir`.
 */
function writeReport(runs: BenchResults[], outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const reportFile = path.join(outDir, 'benchmarks.md');
  const kept = existsSync(reportFile) ? readPartBlocks(readFileSync(reportFile, 'utf8')) : {};
  const byPart = runsByPart(runs);
  const chartOf = <T>(part: Part, render: (results: BenchResults) => T | undefined): T | undefined => {
    const run = byPart[part];
    return run ? render(run) : undefined;
  };
  const charts: Array<[string, string | undefined]> = [
    [COMPARE_CHART, chartOf('compare', renderChart)],
    [WATCH_CHART, optionalChart(chartOf('watch', watchChart))],
    [TXN_CHART, optionalChart(chartOf('txn', txnChart))],
    [TLS_CHART, optionalChart(chartOf('tls', tlsChart))],
    [ENGINE_CHART, optionalChart(chartOf('engine', engineChart))],
  ];
  const written: string[] = [];
  for (const [name, svg] of charts) {
    if (svg === undefined) continue;
    writeFileSync(path.join(outDir, name), svg);
    written.push(name);
  }
  writeFileSync(reportFile, renderReport(runs, kept));
  const carried = PARTS.filter((part) => byPart[part] === undefined && kept[part] !== undefined);
  log(
    `wrote ${path.relative(REPO_ROOT, reportFile)}${written.length > 0 ? ` and ${written.join(', ')}` : ''}${carried.length > 0 ? `; kept the sections of ${carried.join(', ')} as they were` : ''}`,
  );
}

const optionalChart = (chart: BarChart | undefined): string | undefined => (chart ? renderBarChart(chart) : undefined);

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  const outDir = path.resolve(REPO_ROOT, flags.out ?? (flags.quick ? 'bench/results' : 'docs'));

  if (flags.render) {
    writeReport(
      flags.render.split(',').map((file) => JSON.parse(readFileSync(file, 'utf8')) as BenchResults),
      outDir,
    );
    return;
  }

  checkPrerequisites();
  const settings = settingsFor(flags);
  const parts = new Set(settings.parts);
  if (parts.has('store') && settings.store === undefined) throw new Error('the store part needs --store-base DIR');
  const startedAt = new Date().toISOString();
  const work = makeTempDir('work');
  try {
    log(`parts: ${[...parts].join(', ')}`);
    log('measuring one fsync');
    const fsync = measureFsyncCost();
    log(`fsync: median ${fsync.median.toFixed(3)} ms, p99 ${fsync.p99.toFixed(3)} ms`);
    const loadByPart: Partial<Record<Part, number>> = {};
    const timed = async <T>(part: Part, run: () => Promise<T>): Promise<T | undefined> => {
      if (!parts.has(part)) return undefined;
      log(`== ${part}`);
      const result = await run();
      loadByPart[part] = loadavg()[0];
      return result;
    };
    const comparison = await timed('compare', () => runComparison(settings, work.dir));
    const watch = await timed('watch', () => runWatch(settings, work.dir));
    const txn = await timed('txn', () => runTxn(settings, work.dir));
    const tls = await timed('tls', () => runTls(settings, work.dir));
    const engine = await timed('engine', () => runEngine(settings, work.dir));
    const workers = await timed('workers', () => runWorkers(workersOptions(settings), work.dir));
    const store = await timed('store', () => runStoreBeforeAfter(settings));
    const scale = await timed('scale', () => runScale(settings, work.dir));
    const results: BenchResults = {
      startedAt,
      elapsedSec: elapsedSec(),
      settings,
      machine: describeMachine(),
      versions: describeVersions(),
      fsync,
      comparison: comparison?.measurements ?? [],
      readsBeforeWrites: comparison?.readsBeforeWrites ?? [],
      fsyncByRound: comparison?.fsyncByRound,
      scale: scale?.measurements ?? [],
      scaleStarts: scale?.starts ?? [],
      watch,
      txn,
      tls,
      engine,
      workers,
      store,
      loadByPart,
    };
    mkdirSync(resultsDir, { recursive: true });
    const saved = path.join(resultsDir, `${startedAt.replace(/[:.]/g, '-')}${settings.quick ? '-quick' : ''}.json`);
    writeFileSync(saved, `${JSON.stringify(results, null, 2)}\n`);
    log(`raw results: ${path.relative(REPO_ROOT, saved)}`);
    writeReport([results], outDir);
  } finally {
    work.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
