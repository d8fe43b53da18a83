/**
 * One measured run against one running server: throughput with h2load (one
 * fixed key, the server's CPU sampled around it, every success checked) or
 * latency with ghz (many keys).
 *
 * h2load sees HTTP status only, so a throughput run is checked twice over:
 * its exact request body is first sent once through node:http2 and must
 * answer grpc-status 0; and for a workload that writes its key, the key's
 * version is read before and after, and only the calls that show up there
 * count as successful.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runLoad } from './ghz';
import { callOnce, grpcFrame } from './grpc-wire';
import { runH2load } from './h2load';
import { cpuSeconds } from './process-usage';
import { SERVER_APIS } from './server-apis';
import type { RunningServer } from './servers';
import { callOf, keyName, randomKeys, type Workload } from './workloads';

export interface ThroughputRun {
  server: RunningServer;
  workload: Workload;
  concurrency: number;
  /** Every call of the run sends this key. */
  key: string;
  /** Send exactly this many calls (a timed run, checked exactly)... */
  calls?: number;
  /** ...or run this long (warm-up: calls in flight at the end may or may not have been served). */
  durationSec?: number;
  /** For the body and h2load's log. */
  workDir: string;
}

export interface ThroughputResult {
  seconds: number;
  /** Calls that succeeded (for writes: that the key's version counts), per second. */
  okPerSec: number;
  okCalls: number;
  /** HTTP failures, plus for writes the calls h2load counted that the key's version does not. */
  failedCalls: number;
  /** h2load's per-call latency. */
  p50Ms: number;
  p99Ms: number;
  /** Server CPU (all threads, user + system) per successful call. */
  serverCpuUsPerCall: number;
}

export async function measureThroughput(run: ThroughputRun): Promise<ThroughputResult> {
  const { server, workload, concurrency, key, calls, durationSec, workDir } = run;
  const api = SERVER_APIS[server.name];
  const { method, request } = callOf(workload, server.name);
  const body = grpcFrame(api.encode(method, request(key)));
  const bodyFile = path.join(workDir, `${server.name}-${workload.id}.grpc`);
  writeFileSync(bodyFile, body);

  // The very bytes h2load will send, once, where a gRPC error cannot hide behind HTTP 200.
  try {
    await callOnce(server.address, method, body);
  } catch (error) {
    throw new Error(`${server.name} ${workload.label}: the request h2load would send fails: ${(error as Error).message}`, { cause: error });
  }

  const readVersion = workload.writesKey ? api.readVersion : undefined;
  const versionBefore = readVersion ? await readVersion(server.address, key) : 0;
  const cpuBefore = cpuSeconds(server.pid);
  const result = await runH2load({
    address: server.address,
    method,
    bodyFile,
    concurrency,
    calls,
    durationSec,
    logFile: path.join(workDir, `h2load-${process.pid}.log`),
  });
  const cpuUsed = cpuSeconds(server.pid) - cpuBefore;

  let okCalls = result.succeeded;
  if (readVersion) {
    const written = (await readVersion(server.address, key)) - versionBefore;
    // A timed run may end with calls in flight that the server still serves.
    const mostExpected = calls !== undefined ? result.succeeded : result.succeeded + concurrency;
    if (written > mostExpected) {
      throw new Error(
        `${server.name} ${workload.label}: key ${key} was written ${written} times, but h2load saw only ${result.succeeded} successful calls`,
      );
    }
    okCalls = Math.min(written, result.succeeded);
  }
  const failedCalls = result.failed + (result.succeeded - okCalls);
  if (failedCalls > 0) {
    process.stderr.write(`  ! ${server.name} ${workload.label} c=${concurrency}: ${failedCalls} calls failed or did not write\n`);
  }
  return {
    seconds: result.seconds,
    okPerSec: result.seconds > 0 ? okCalls / result.seconds : 0,
    okCalls,
    failedCalls,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    serverCpuUsPerCall: okCalls > 0 ? (cpuUsed * 1e6) / okCalls : Number.NaN,
  };
}

export interface LatencyRun {
  server: RunningServer;
  workload: Workload;
  concurrency: number;
  /** ghz's request list (bench/workloads.ts writeGhzDataFile). */
  dataFile: string;
  durationSec: number;
}

export interface LatencyResult {
  p50Ms: number;
  p99Ms: number;
  /** Calls/s as ghz saw them: lower than the server can do, since ghz takes much of the shared CPU. */
  okPerSec: number;
  errors: number;
  firstError?: string;
}

export async function measureLatency(run: LatencyRun): Promise<LatencyResult> {
  const { server, workload, concurrency, dataFile, durationSec } = run;
  const result = await runLoad({
    method: { ...SERVER_APIS[server.name].proto, call: callOf(workload, server.name).method },
    address: server.address,
    dataFile,
    concurrency,
    durationSec,
    reportFile: path.join(path.dirname(dataFile), `ghz-${process.pid}.json`),
  });
  if (result.errorCount > 0) {
    process.stderr.write(
      `  ! ${server.name} ${workload.label} c=${concurrency} (ghz): ${result.errorCount} failed calls, e.g. ${result.firstError}\n`,
    );
  }
  return { p50Ms: result.p50Ms, p99Ms: result.p99Ms, okPerSec: result.okPerSec, errors: result.errorCount, firstError: result.firstError };
}

/** Rotates the order each round (A B C, B C A, C A B) so no server always goes first. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/**
 * The key every h2load call of a round sends: one of those loaded, a
 * different one each round, the same for every server and workload.
 */
export function roundKey(keyCount: number, round: number): string {
  return keyName(randomKeys(keyCount, round + 1, 7)[round]);
}

/**
 * Calls to send in an h2load run so that it lasts about `seconds` at the
 * rate last measured (a run with a fixed count is the one whose every
 * successful write can be checked exactly), and never trivially few.
 */
export function callsFor(ratePerSec: number, seconds: number, concurrency: number): number {
  return Math.max(Math.round(ratePerSec * seconds), 50 * concurrency, 200);
}
