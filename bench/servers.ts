/**
 * Starts and stops the servers under test as child processes on loopback:
 * kv (the compiled dist/main.js, so the numbers are production code, started
 * through the same helper the tests use), etcd (single member) and the
 * grpc-js echo server. Each start resolves once the server says it is ready;
 * stop sends SIGTERM and waits, then SIGKILLs a server that ignores it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clusterChildren, startServer } from '../test/support/server-process';
import type { Endpoint } from './grpc-wire';

export const REPO_ROOT = path.resolve(__dirname, '..');

/** The servers a benchmark can run against; see bench/server-apis.ts for how each is spoken to. */
export type ServerName = 'kv' | 'etcd' | 'echo';

/** A server the load generators point at (its address, and TLS and headers when it has them). */
export interface RunningServer extends Endpoint {
  /** Which API it speaks. */
  readonly name: ServerName;
  readonly pid: number;
  /** From spawn to the ready line: for kv and etcd, mostly how long recovery of the data directory took. */
  readonly startupMs: number;
  /** Every process whose CPU is the server's, when there are several (kv --workers N: supervisor, store owner, workers); default [pid]. */
  processIds?(): number[];
  stop(): Promise<void>;
}

/** Long enough for kv or etcd to recover ten million keys on a slow, shared machine. */
const START_TIMEOUT_MS = 15 * 60_000;
const STOP_TIMEOUT_MS = 60_000;

/** A directory under the OS temp dir, removed by the returned function. */
export function makeTempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `kv-bench-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A port nobody listens on right now (etcd must be told its ports up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves once `child` is gone: SIGTERM first, SIGKILL if it is still there after STOP_TIMEOUT_MS. */
function stopChild(name: string, child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const killer = setTimeout(() => {
      process.stderr.write(`${name} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killing it\n`);
      child.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Spawns a process and resolves when a line on stdout or stderr matches
 * `ready`. Both streams are drained for the whole life of the child: a full
 * pipe would otherwise stall a server mid-benchmark.
 */
function spawnUntilReady(
  name: string,
  command: string,
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; readyLine: string }> {
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n--- last output of ${name} ---\n${tail}`));
    };
    const watch = (chunk: Buffer): void => {
      if (settled) return;
      tail = (tail + chunk.toString('utf8')).slice(-4000);
      const line = tail.split('\n').find((candidate) => ready.test(candidate));
      if (line !== undefined) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, readyLine: line });
      }
    };
    child.stdout?.on('data', watch);
    child.stderr?.on('data', watch);
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`)));
  });
}

export interface KvStartOptions {
  dataDir: string;
  /** Extra node flags, e.g. --cpu-prof for profiling. */
  nodeArgs?: string[];
  /** Extra kv-server flags, e.g. --engine etcd or --tls-cert. */
  args?: string[];
  /** How clients reach it when the flags ask for TLS or tokens. */
  caFile?: string;
  headers?: Record<string, string>;
}

export async function startKv({ dataDir, nodeArgs = [], args = [], caFile, headers }: KvStartOptions): Promise<RunningServer> {
  const started = performance.now();
  // Log level warn: per-call info logging is not what a benchmark should measure.
  const server = await startServer({
    nodeArgs,
    dataDir,
    args: ['--fsync', 'always', '--log-level', 'warn', ...args],
    timeoutMs: START_TIMEOUT_MS,
  });
  const startupMs = performance.now() - started;
  const pid = server.child.pid ?? 0;
  return {
    name: 'kv',
    address: server.address,
    caFile,
    headers,
    pid,
    startupMs,
    processIds: () => [pid, ...clusterChildren(pid).map((child) => child.pid)],
    stop: () => stopChild('kv', server.child),
  };
}

export async function startEcho(): Promise<RunningServer> {
  const started = performance.now();
  const args = ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'echo-server.ts'), '--listen', '127.0.0.1:0'];
  const { child, readyLine } = await spawnUntilReady('echo', process.execPath, args, /^echo-server listening on /);
  const address = /listening on (\S+:\d+)/.exec(readyLine)?.[1];
  if (address === undefined) throw new Error(`echo: no address in "${readyLine}"`);
  return { name: 'echo', address, pid: child.pid ?? 0, startupMs: performance.now() - started, stop: () => stopChild('echo', child) };
}

export interface EtcdStartOptions {
  dataDir: string;
  /** etcd's --quota-backend-bytes; etcd's own default (2 GiB) when absent. */
  quotaBackendBytes?: number;
  /** Serve clients over TLS with this certificate (no client certificates asked for); caFile is what clients trust. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

export async function startEtcd({ dataDir, quotaBackendBytes, tls }: EtcdStartOptions): Promise<RunningServer> {
  const started = performance.now();
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name',
    'bench',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `bench=${peer}`,
    '--initial-cluster-state',
    'new',
    // Structured logs on stderr at info, the level etcd ships with: the
    // ready message ("serving client traffic") is logged there, and its steady-state logging is rare.
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
  ];
  if (quotaBackendBytes !== undefined) args.push('--quota-backend-bytes', String(quotaBackendBytes));
  if (tls) args.push('--cert-file', tls.certFile, '--key-file', tls.keyFile);
  const { child } = await spawnUntilReady('etcd', 'etcd', args, /serving client traffic|ready to serve client requests/);
  return {
    name: 'etcd',
    address: `127.0.0.1:${clientPort}`,
    caFile: tls?.caFile,
    pid: child.pid ?? 0,
    startupMs: performance.now() - started,
    stop: () => stopChild('etcd', child),
  };
}
