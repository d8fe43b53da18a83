/**
 * Runs ghz (a Go gRPC client) for latency percentiles over many keys, and
 * reduces its JSON report to the numbers the benchmark publishes. Not for
 * ranking servers by calls/s: ghz spends so much CPU per call on the shared
 * cores that it pulls every server toward the same number; h2load
 * (bench/h2load.ts) measures throughput.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './servers';

/** Built by scripts/install-bench-tools.sh; falls back to a ghz on PATH. */
export function ghzBinary(): string {
  const local = path.join(REPO_ROOT, '.tools', 'bin', 'ghz');
  return existsSync(local) ? local : 'ghz';
}

/** How ghz finds a method: a .proto (relative to the repo) and its import roots. */
export interface ProtoMethod {
  proto: string;
  importPaths: string[];
  /** Fully qualified, e.g. kv.v1.KeyValueService/Set. */
  call: string;
}

export interface LoadOptions {
  method: ProtoMethod;
  address: string;
  /** A JSON array of request messages; call number i sends element i mod length. */
  dataFile: string;
  concurrency: number;
  /** Run for this long... */
  durationSec?: number;
  /** ...or send exactly this many calls. */
  total?: number;
  /** Where ghz writes its JSON report (deleted after reading). */
  reportFile: string;
}

export interface LoadResult {
  /** Successful calls per second over the whole run. */
  okPerSec: number;
  okCount: number;
  /** Failed calls, not counting those cut off when the run's time was up. */
  errorCount: number;
  /** One error message, to say why calls failed. */
  firstError?: string;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

interface GhzReport {
  count: number;
  total: number;
  average: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  latencyDistribution?: Array<{ percentage: number; latency: number }> | null;
}

const NS_PER_MS = 1e6;

/**
 * When a timed run ends ghz closes its connection under the calls still in
 * flight (at most one per concurrent worker); those are not server errors.
 */
const CUT_AT_END = /use of closed network connection|client connection is closing|context canceled/;

function percentile(report: GhzReport, percentage: number): number {
  const entry = report.latencyDistribution?.find((candidate) => candidate.percentage === percentage);
  return entry ? entry.latency / NS_PER_MS : Number.NaN;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { method, address, dataFile, concurrency, durationSec, total, reportFile } = options;
  const howLong = durationSec !== undefined ? ['--duration', `${durationSec}s`] : ['--total', String(total ?? 1)];
  const args = [
    '--insecure',
    '--proto',
    path.join(REPO_ROOT, method.proto),
    '--import-paths',
    method.importPaths.map((dir) => path.join(REPO_ROOT, dir)).join(','),
    '--call',
    method.call,
    '--data-file',
    dataFile,
    '--concurrency',
    String(concurrency),
    // One HTTP/2 connection, as one application instance with one channel
    // would use; every server gets the same.
    '--connections',
    '1',
    '--format',
    'json',
    '--output',
    reportFile,
    ...howLong,
    address,
  ];

  return new Promise((resolve, reject) => {
    execFile(ghzBinary(), args, { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) return reject(new Error(`ghz ${method.call} failed: ${error.message}\n${stderr}`));
      let report: GhzReport;
      try {
        report = JSON.parse(readFileSync(reportFile, 'utf8')) as GhzReport;
      } catch (parseError) {
        return reject(new Error(`ghz ${method.call}: unreadable report: ${(parseError as Error).message}`));
      } finally {
        rmSync(reportFile, { force: true });
      }
      const okCount = report.statusCodeDistribution?.OK ?? 0;
      const seconds = report.total / 1e9;
      const errors = Object.entries(report.errorDistribution ?? {}).filter(([message]) => !CUT_AT_END.test(message));
      resolve({
        okPerSec: seconds > 0 ? okCount / seconds : 0,
        okCount,
        errorCount: errors.reduce((sum, [, count]) => sum + count, 0),
        firstError: errors[0]?.[0],
        p50Ms: percentile(report, 50),
        p99Ms: percentile(report, 99),
        meanMs: report.average / NS_PER_MS,
      });
    });
  });
}
