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
import { callOf, keyName, randomKeys, SET, type Workload } from './workloads';

export interface ThroughputRun {
  /**
   * One server, or several serving the same data (kv frontends over one
   * etcd): then the calls and the concurrency are split evenly between
   * them, one h2load each, all at once.
   */
  server: RunningServer | readonly RunningServer[];
  workload: Workload;
  concurrency: number;
  /** HTTP/2 connections of each h2load (default 1): a server of several processes (kv --workers) needs several to use them. */
  connections?: number;
  /** Every call of the run sends this key. */
  key: string;
  /** Send exactly this many calls (a timed run, checked exactly)... */
  calls?: number;
  /** ...or run this long (warm-up: calls in flight at the end may or may not have been served). */
  durationSec?: number;
  /** For the body and h2load's log. */
  workDir: string;
  /** Other processes whose CPU per call is reported too, by name (e.g. the etcd members behind kv frontends). */
  alsoCpuOf?: Readonly<Record<string, readonly number[]>>;
}

export interface ThroughputResult {
  seconds: number;
  /** Calls that succeeded (for writes: that the key's version counts), per second. */
  okPerSec: number;
  okCalls: number;
  /** HTTP failures, plus for writes the calls h2load counted that the key's version does not. */
  failedCalls: number;
  /** h2load's per-call latency (split runs: the mean of the p50s, the larger p99). */
  p50Ms: number;
  p99Ms: number;
  /** Server CPU (all threads, user + system, every server of the run) per successful call. */
  serverCpuUsPerCall: number;
  /** The CPU per successful call of each group named in alsoCpuOf. */
  otherCpuUsPerCall?: Record<string, number>;
}

const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** Sends a Set of each of the workload's companion keys, so that its compares find them. */
async function writeCompanions(server: RunningServer, workload: Workload, key: string): Promise<void> {
  const companions = workload.companionKeys?.(key) ?? [];
  if (companions.length === 0) return;
  const api = SERVER_APIS[server.name];
  const set = callOf(SET, server.name);
  for (const companion of [key, ...companions])
    await callOnce(server, set.method, grpcFrame(api.encode(set.method, set.request(companion))));
}

export async function measureThroughput(run: ThroughputRun): Promise<ThroughputResult> {
  const { workload, concurrency, key, calls, durationSec, workDir, alsoCpuOf = {} } = run;
  const servers: readonly RunningServer[] = Array.isArray(run.server) ? run.server : [run.server as RunningServer];
  const first = servers[0];
  const label = servers.length > 1 ? `${first.name} x${servers.length}` : first.name;
  const api = SERVER_APIS[first.name];
  const { method, request } = callOf(workload, first.name);
  const body = grpcFrame(api.encode(method, request(key)));
  const bodyFile = path.join(workDir, `${first.name}-${workload.id}.grpc`);
  writeFileSync(bodyFile, body);

  await writeCompanions(first, workload, key);
  // The very bytes h2load will send, once to each server, where a gRPC error cannot hide behind HTTP 200.
  for (const server of servers) {
    try {
      await callOnce(server, method, body);
    } catch (error) {
      throw new Error(`${label} ${workload.label}: the request h2load would send fails: ${(error as Error).message}`, { cause: error });
    }
  }

  const readVersion = workload.writesKey ? api.readVersion : undefined;
  const versionBefore = readVersion ? await readVersion(first, key) : 0;
  const serverPids = servers.flatMap((server) => server.processIds?.() ?? [server.pid]);
  const cpuBefore = cpuOf(serverPids);
  const othersBefore = Object.fromEntries(Object.entries(alsoCpuOf).map(([name, pids]) => [name, cpuOf(pids)]));
  const share = (total: number, index: number): number => Math.floor(total / servers.length) + (index < total % servers.length ? 1 : 0);
  const results = await Promise.all(
    servers.map((server, index) =>
      runH2load({
        endpoint: server,
        method,
        bodyFile,
        concurrency: share(concurrency, index),
        connections: run.connections,
        calls: calls !== undefined ? share(calls, index) : undefined,
        durationSec,
        logFile: path.join(workDir, `h2load-${process.pid}-${index}.log`),
      }),
    ),
  );
  const cpuUsed = cpuOf(serverPids) - cpuBefore;
  const othersUsed = Object.fromEntries(Object.entries(alsoCpuOf).map(([name, pids]) => [name, cpuOf(pids) - othersBefore[name]]));

  const succeeded = results.reduce((sum, result) => sum + result.succeeded, 0);
  const seconds = Math.max(...results.map((result) => result.seconds));
  let okCalls = succeeded;
  if (readVersion) {
    const written = (await readVersion(first, key)) - versionBefore;
    // A timed run may end with calls in flight that the server still serves.
    const mostExpected = calls !== undefined ? succeeded : succeeded + concurrency;
    if (written > mostExpected) {
      throw new Error(
        `${label} ${workload.label}: key ${key} was written ${written} times, but h2load saw only ${succeeded} successful calls`,
      );
    }
    okCalls = Math.min(written, succeeded);
  }
  const failedCalls = results.reduce((sum, result) => sum + result.failed, 0) + (succeeded - okCalls);
  if (failedCalls > 0) {
    process.stderr.write(`  ! ${label} ${workload.label} c=${concurrency}: ${failedCalls} calls failed or did not write\n`);
  }
  const perCall = (cpu: number): number => (okCalls > 0 ? (cpu * 1e6) / okCalls : Number.NaN);
  return {
    seconds,
    okPerSec: seconds > 0 ? okCalls / seconds : 0,
    okCalls,
    failedCalls,
    p50Ms: results.reduce((sum, result) => sum + result.p50Ms, 0) / results.length,
    p99Ms: Math.max(...results.map((result) => result.p99Ms)),
    serverCpuUsPerCall: perCall(cpuUsed),
    ...(Object.keys(alsoCpuOf).length > 0
      ? { otherCpuUsPerCall: Object.fromEntries(Object.entries(othersUsed).map(([name, cpu]) => [name, perCall(cpu)])) }
      : {}),
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
