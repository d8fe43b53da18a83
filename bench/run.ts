/**
 * `npm run bench`: kv vs etcd vs the grpc-js echo ceiling (calls/s from
 * h2load, latency from ghz), then kv and etcd holding 1k to 10M keys,
 * written to docs/benchmarks.md and docs/benchmarks.svg (about 40 minutes).
 *
 *   --quick           smoke run (~2 min): short runs, one round, small key
 *                     counts; writes to bench/results/ so docs/ keeps the real run
 *   --rounds N        interleaved rounds (default 3)
 *   --duration S      seconds an h2load run aims for (default 8)
 *   --scale-keys LIST key counts for the scale runs (default 1000,100000,1000000,10000000)
 *   --out DIR         where benchmarks.md/.svg go
 *   --render FILE     re-render the report from a saved results JSON, run nothing
 *
 * Needs `npm run build` (kv is benchmarked as dist/main.js) and
 * scripts/install-bench-tools.sh (h2load, ghz, etcd).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderChart } from './chart-svg';
import { runComparison } from './compare';
import { measureFsyncCost } from './fsync-cost';
import { ghzBinary } from './ghz';
import { describeMachine, describeVersions } from './machine';
import { elapsedSec, log } from './progress';
import { renderReport } from './report';
import type { BenchResults, Settings } from './results';
import { runScale } from './scale';
import { makeTempDir, REPO_ROOT } from './servers';
import { VALUE_BYTES } from './workloads';

interface Flags {
  quick: boolean;
  rounds?: number;
  durationSec?: number;
  scaleKeys?: number[];
  out?: string;
  render?: string;
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
    else if (flag === '--scale-keys') {
      flags.scaleKeys = value()
        .split(',')
        .map((part) => Number(part));
      if (flags.scaleKeys.some((keys) => !Number.isInteger(keys) || keys < 1))
        throw new Error('--scale-keys needs positive integers, e.g. 1000,100000');
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

function writeReport(results: BenchResults, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const chartName = 'benchmarks.svg';
  writeFileSync(path.join(outDir, chartName), renderChart(results));
  writeFileSync(path.join(outDir, 'benchmarks.md'), renderReport(results, chartName));
  log(`wrote ${path.relative(REPO_ROOT, path.join(outDir, 'benchmarks.md'))} and ${chartName}`);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  const outDir = path.resolve(REPO_ROOT, flags.out ?? (flags.quick ? 'bench/results' : 'docs'));

  if (flags.render) {
    writeReport(JSON.parse(readFileSync(flags.render, 'utf8')) as BenchResults, outDir);
    return;
  }

  checkPrerequisites();
  const settings = settingsFor(flags);
  const startedAt = new Date().toISOString();
  const work = makeTempDir('work');
  try {
    log('measuring one fsync');
    const fsync = measureFsyncCost();
    log(`fsync: median ${fsync.median.toFixed(3)} ms, p99 ${fsync.p99.toFixed(3)} ms`);
    const comparison = await runComparison(settings, work.dir);
    const scale = await runScale(settings, work.dir);
    const results: BenchResults = {
      startedAt,
      elapsedSec: elapsedSec(),
      settings,
      machine: describeMachine(),
      versions: describeVersions(),
      fsync,
      comparison: comparison.measurements,
      readsBeforeWrites: comparison.readsBeforeWrites,
      fsyncByRound: comparison.fsyncByRound,
      scale: scale.measurements,
      scaleStarts: scale.starts,
    };
    mkdirSync(resultsDir, { recursive: true });
    const saved = path.join(resultsDir, `${startedAt.replace(/[:.]/g, '-')}${settings.quick ? '-quick' : ''}.json`);
    writeFileSync(saved, `${JSON.stringify(results, null, 2)}\n`);
    log(`raw results: ${path.relative(REPO_ROOT, saved)}`);
    writeReport(results, outDir);
  } finally {
    work.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
