/**
 * Runs h2load (nghttp2's load generator, written in C) as a gRPC client:
 * every call posts the same prebuilt body (one gRPC frame) to one method on
 * one HTTP/2 connection, with up to `concurrency` calls in flight. It costs
 * the shared cores a fraction of what ghz costs per call, so the number of
 * calls per second it measures is the server's rather than the client's.
 *
 * h2load knows nothing of gRPC: it counts HTTP 200 as success, and gRPC
 * answers errors with HTTP 200 too. bench/measure.ts checks each run
 * separately (a sample call of the same body, and for writes the key's
 * version against the count reported here).
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { endpointUrl, GRPC_REQUEST_HEADERS, type Endpoint } from './grpc-wire';
import { quantile } from './stats';

export interface H2loadOptions {
  /** With a CA, h2load speaks TLS (ALPN h2; it does not verify the certificate). Its headers go on every call. */
  endpoint: Endpoint;
  /** Fully qualified gRPC method, e.g. kv.v1.KeyValueService/Set. */
  method: string;
  /** The request body: one gRPC frame. */
  bodyFile: string;
  concurrency: number;
  /** HTTP/2 connections the calls are spread over (default 1); `concurrency` is the total in flight. */
  connections?: number;
  /** Send exactly this many calls... */
  calls?: number;
  /** ...or run for this long (the count of calls the server saw is then not exact: some end in flight). */
  durationSec?: number;
  /** Where h2load writes one line per call (deleted after reading). */
  logFile: string;
}

export interface H2loadResult {
  seconds: number;
  /** Calls answered with HTTP 200. */
  succeeded: number;
  /** Calls answered otherwise, reset, or timed out. */
  failed: number;
  okPerSec: number;
  /** Per-call latency from h2load's log, in ms. */
  p50Ms: number;
  p99Ms: number;
}

const UNIT_SECONDS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1 };

function parse(stdout: string): { seconds: number; succeeded: number; failed: number } {
  const finished = /finished in ([\d.]+)(us|ms|s),/.exec(stdout);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
    stdout,
  );
  if (!finished || !requests) throw new Error(`h2load: unexpected output:\n${stdout}`);
  const [, , , , succeeded, failed, errored, timeout] = requests.map(Number);
  return { seconds: Number(finished[1]) * UNIT_SECONDS[finished[2]], succeeded, failed: failed + errored + timeout };
}

/** Latency percentiles from the log: one tab-separated line per call, its third column the µs to the end of the response. */
function latencies(logFile: string): { p50Ms: number; p99Ms: number } {
  const micros: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const columns = line.split('\t');
    if (columns.length >= 3 && columns[1] === '200') micros.push(Number(columns[2]));
  }
  micros.sort((a, b) => a - b);
  return { p50Ms: quantile(micros, 0.5) / 1000, p99Ms: quantile(micros, 0.99) / 1000 };
}

export function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const { endpoint, method, bodyFile, concurrency, calls, durationSec, logFile } = options;
  const connections = options.connections ?? 1;
  if (concurrency % connections !== 0)
    throw new Error(`h2load: ${concurrency} calls in flight do not split evenly over ${connections} connections`);
  const args = [
    // By default one connection, `concurrency` streams on it: one application instance with one channel, as with ghz.
    `--clients=${connections}`,
    `--max-concurrent-streams=${concurrency / connections}`,
    ...Object.entries({ ...GRPC_REQUEST_HEADERS, ...endpoint.headers }).map(([name, value]) => `--header=${name}: ${value}`),
    `--data=${bodyFile}`,
    `--log-file=${logFile}`,
  ];
  if (calls !== undefined) args.push(`--requests=${calls}`);
  else if (durationSec !== undefined) args.push(`--duration=${durationSec}`);
  else throw new Error('runH2load needs calls or durationSec');
  args.push(`${endpointUrl(endpoint)}/${method}`);

  return new Promise((resolve, reject) => {
    execFile('h2load', args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      try {
        if (error) return reject(new Error(`h2load ${method} failed: ${error.message}\n${stderr}`));
        const { seconds, succeeded, failed } = parse(stdout);
        resolve({ seconds, succeeded, failed, okPerSec: seconds > 0 ? succeeded / seconds : 0, ...latencies(logFile) });
      } catch (parseError) {
        reject(parseError);
      } finally {
        rmSync(logFile, { force: true });
      }
    });
  });
}
