/** One timed ghz run against one running server, with the server's CPU use around it. */
import path from 'node:path';
import { runLoad, type LoadResult } from './ghz';
import { cpuSeconds } from './process-cpu';
import type { RunningServer } from './servers';
import { methodFor, type Operation, type ServerName } from './workloads';

export interface TimedRun {
  server: RunningServer;
  serverName: ServerName;
  operation: Operation;
  concurrency: number;
  dataFile: string;
  durationSec: number;
}

export interface TimedResult extends LoadResult {
  serverCpuUsPerCall: number;
}

export async function timedRun(run: TimedRun): Promise<TimedResult> {
  const cpuBefore = cpuSeconds(run.server.pid);
  const result = await runLoad({
    method: methodFor(run.serverName, run.operation),
    address: run.server.address,
    dataFile: run.dataFile,
    concurrency: run.concurrency,
    durationSec: run.durationSec,
    reportFile: path.join(path.dirname(run.dataFile), `report-${process.pid}.json`),
  });
  const cpuUsed = cpuSeconds(run.server.pid) - cpuBefore;
  if (result.errorCount > 0) {
    process.stderr.write(
      `  ! ${run.serverName} ${run.operation} c=${run.concurrency}: ${result.errorCount} failed calls, e.g. ${result.firstError}\n`,
    );
  }
  return { ...result, serverCpuUsPerCall: result.okCount > 0 ? (cpuUsed * 1e6) / result.okCount : Number.NaN };
}

/** Sends every message of `dataFile` exactly once (ghz numbers calls 0..n-1); fails unless all succeed. */
export async function loadAll(server: RunningServer, serverName: ServerName, dataFile: string, count: number): Promise<void> {
  const result = await runLoad({
    method: methodFor(serverName, 'set'),
    address: server.address,
    dataFile,
    concurrency: 16,
    total: count,
    reportFile: path.join(path.dirname(dataFile), `report-${process.pid}.json`),
  });
  if (result.okCount !== count) {
    throw new Error(
      `preloading ${serverName}: ${result.okCount} of ${count} writes succeeded (${result.firstError ?? 'no error reported'})`,
    );
  }
}

/** Rotates the server order each round (A B C, B C A, C A B) so no server always goes first. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
