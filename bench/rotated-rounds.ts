/**
 * Side-by-side rounds for the by-hand comparisons (compare-builds.ts,
 * compare-workers.ts): each run once on every server to learn its rate,
 * then `rounds` rounds in which every server takes every run, in an order
 * that rotates each round, each run sized to last about `durationSec` at the
 * rate last measured; one fsync's cost measured at the start of each round.
 */
import { measureFsyncCost } from './fsync-cost';
import { callsFor, measureThroughput, rotate, type ThroughputResult } from './measure';
import { log } from './progress';
import type { RunningServer } from './servers';
import { summarize } from './stats';
import type { Workload } from './workloads';

export type Labelled = RunningServer & { label: string };

export interface RoundRun {
  workload: Workload;
  concurrency: number;
  connections?: number;
}

export interface RoundsResult {
  /** Each run's results on each server, one per round, under `id(server, run)`. */
  results: Map<string, ThroughputResult[]>;
  /** One fsync's median cost (ms), per round. */
  fsyncMs: number[];
}

export async function measureRotatedRounds<R extends RoundRun>(options: {
  servers: readonly Labelled[];
  runs: readonly R[];
  rounds: number;
  durationSec: number;
  workDir: string;
  id: (server: Labelled, run: R) => string;
}): Promise<RoundsResult> {
  const { servers, runs, rounds, durationSec, workDir, id } = options;
  const rates = new Map<string, number>();
  const results = new Map<string, ThroughputResult[]>();
  for (const run of runs) {
    for (const server of servers) {
      const warm = await measureThroughput({ server, ...run, key: 'k0', durationSec: 2, workDir });
      rates.set(id(server, run), warm.okPerSec);
    }
  }
  const fsyncMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    fsyncMs.push(measureFsyncCost(200).median);
    for (const run of runs) {
      for (const server of rotate(servers, round)) {
        const calls = callsFor(rates.get(id(server, run)) ?? 100, durationSec, run.concurrency);
        const result = await measureThroughput({ server, ...run, key: `k${round + 1}`, calls, workDir });
        rates.set(id(server, run), result.okPerSec);
        results.set(id(server, run), [...(results.get(id(server, run)) ?? []), result]);
        log(
          `round ${round + 1} ${id(server, run)}: ${fmt(result.okPerSec)}/s, p50 ${fmt(result.p50Ms, 3)} ms, ${fmt(result.serverCpuUsPerCall)} µs CPU/call, ${result.failedCalls} failed`,
        );
      }
    }
  }
  return { results, fsyncMs };
}

export const fmt = (value: number, digits = 0): string => value.toFixed(digits);

/** "median (min–max)" of the values. */
export function range(values: number[], digits = 0): string {
  const s = summarize(values);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** "median (min–max)" of a's calls/s over b's, taken within each round. */
export function roundRatio(results: RoundsResult['results'], a: string, b: string): string {
  const mine = results.get(a) ?? [];
  const theirs = results.get(b) ?? [];
  return range(
    mine.map((r, i) => r.okPerSec / theirs[i].okPerSec),
    2,
  );
}
