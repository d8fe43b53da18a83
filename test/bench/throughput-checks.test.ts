/**
 * The checks `npm run bench` relies on to trust h2load, which sees only
 * HTTP status: the request bodies the bench builds are ones kv-server
 * accepts, a gRPC error behind HTTP 200 is caught, and a key's version
 * counts exactly the Sets that were served.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callOnce, GrpcCallError, grpcFrame } from '../../bench/grpc-wire';
import { runH2load } from '../../bench/h2load';
import { measureThroughput } from '../../bench/measure';
import { SERVER_APIS } from '../../bench/server-apis';
import type { RunningServer as BenchServer } from '../../bench/servers';
import { callOf, GET, SET } from '../../bench/workloads';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let workDir: string;
const kv = SERVER_APIS.kv;

beforeAll(async () => {
  server = await startServer();
  workDir = mkdtempSync(path.join(os.tmpdir(), 'kv-bench-test-'));
});

afterAll(async () => {
  await server.stop();
  rmSync(workDir, { recursive: true, force: true });
});

const body = (method: string, request: Record<string, unknown>): Buffer => grpcFrame(kv.encode(method, request));

test("a Set body built for h2load is accepted, and the key's version counts each Set", async () => {
  const { method, request } = callOf(SET, 'kv');
  expect(await kv.readVersion?.(server, 'bench/a')).toBe(0);
  for (let count = 0; count < 3; count++) await callOnce(server, method, body(method, request('bench/a')));
  expect(await kv.readVersion?.(server, 'bench/a')).toBe(3);
});

test('a gRPC error answered with HTTP 200 is reported with its status', async () => {
  const { method } = callOf(GET, 'kv');
  await expect(callOnce(server, method, body(method, { key: 'bench/missing' }))).rejects.toMatchObject({ status: '5' });
  const error: unknown = await callOnce(server, method, body(method, { key: '' })).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(GrpcCallError);
  expect((error as GrpcCallError).status).toBe('3');
});

function hasH2load(): boolean {
  try {
    execFileSync('h2load', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// h2load comes with `npm run bench:tools`, which CI does not run.
const withH2load = hasH2load() ? test : test.skip;

withH2load("h2load's count of successful Sets matches the key's version, and a failing body is refused before the run", async () => {
  const bench: BenchServer = {
    name: 'kv',
    address: server.address,
    pid: server.child.pid ?? 0,
    startupMs: 0,
    stop: () => Promise.resolve(),
  };
  const result = await measureThroughput({ server: bench, workload: SET, concurrency: 8, key: 'bench/h2load', calls: 500, workDir });
  expect(result.okCalls).toBe(500);
  expect(result.failedCalls).toBe(0);
  // One more: the check call that sends h2load's body once before the run.
  expect(await kv.readVersion?.(server, 'bench/h2load')).toBe(501);

  // h2load itself counts a NOT_FOUND as a success: HTTP 200.
  const { method } = callOf(GET, 'kv');
  const missing = path.join(workDir, 'missing.grpc');
  writeFileSync(missing, body(method, { key: 'bench/missing' }));
  const raw = await runH2load({
    endpoint: server,
    method,
    bodyFile: missing,
    concurrency: 1,
    calls: 10,
    logFile: path.join(workDir, 'log'),
  });
  expect(raw.succeeded).toBe(10);
  await expect(
    measureThroughput({ server: bench, workload: GET, concurrency: 1, key: 'bench/missing', calls: 10, workDir }),
  ).rejects.toThrow(/grpc-status 5/);
});
