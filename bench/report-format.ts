/** How the report writes numbers, and ratios taken within rounds: shared by every section of docs/benchmarks.md. */
import type { SetupRun } from './results';
import { summarize, type Summary } from './stats';
import type { ThroughputResult } from './measure';

export const int = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
export const ms = (value: number): string => (Number.isFinite(value) ? (value < 10 ? value.toFixed(2) : value.toFixed(1)) : '–');
export const ratio = (value: number): string =>
  Number.isFinite(value) ? `${value < 0.1 ? value.toPrecision(2) : value.toFixed(2)}×` : '–';
export const spread = (summary: Summary, format: (value: number) => string): string =>
  summary.count > 1 ? `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})` : format(summary.median);
export const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** The median over rounds of `metric`, with its range. */
export const over = <T>(runs: readonly T[], metric: (run: T) => number): Summary => summarize(runs.map(metric));

/**
 * a / b of `metric`, round by round (only runs measured moments apart are
 * divided), summarized over the rounds.
 */
export function pairedByRound<T extends { round: number }>(a: readonly T[], b: readonly T[], metric: (run: T) => number): Summary {
  const ratios: number[] = [];
  for (const run of a) {
    const other = b.find((candidate) => candidate.round === run.round);
    if (other && metric(other) > 0) ratios.push(metric(run) / metric(other));
  }
  return summarize(ratios);
}

export const okPerSec = (run: { throughput: ThroughputResult }): number => run.throughput.okPerSec;
export const cpuPerCall = (run: { throughput: ThroughputResult }): number => run.throughput.serverCpuUsPerCall;
export const p99 = (run: { throughput: ThroughputResult }): number => run.throughput.p99Ms;

export const setupRuns = (runs: readonly SetupRun[], setup: string, workload: string): SetupRun[] =>
  runs.filter((run) => run.setup === setup && run.workload === workload);

/** Failed calls over a set of runs. */
export const failures = (runs: readonly { throughput: ThroughputResult }[]): number =>
  runs.reduce((sum, run) => sum + run.throughput.failedCalls, 0);
