/**
 * The pieces of the watch benchmark that talk to processes: the watch
 * client child (bench/watch-client.ts) driven over its stdin/stdout, and
 * the writer, one connection with a fixed number of writes in flight, each
 * value carrying its send time so the watcher can tell how long the event
 * took to arrive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SetResponse } from '../src/gen/kv/v1/kv';
import { callOnce, GrpcConnection, grpcFrame } from './grpc-wire';
import { decodeEtcdResponse, encodeEtcdRequest, encodeKvRequest } from './server-apis';
import { REPO_ROOT, type RunningServer } from './servers';
import type { WatchClientStats } from './watch-client';
import { monotonicUs } from './watch-streams';

/** A value of about the bench's 100 bytes that says when it was sent. */
export function timedValue(): { sentUs: number; note: string } {
  return { sentUs: monotonicUs(), note: 'x'.repeat(68) };
}

/** The bytes of one Set (kv) or Put (etcd) of `value`. */
export function setBody(server: RunningServer, key: string, value: unknown): { method: string; body: Buffer } {
  if (server.name === 'etcd') {
    const method = 'etcdserverpb.KV/Put';
    return { method, body: grpcFrame(encodeEtcdRequest(method, { key, value: JSON.stringify(value) })) };
  }
  const method = 'kv.v1.KeyValueService/Set';
  return { method, body: grpcFrame(encodeKvRequest(method, { key, value })) };
}

export interface WriterResult {
  ok: number;
  failed: number;
  startUs: number;
  endUs: number;
  firstError?: string;
}

/**
 * Writes `keyOf(i)` for i = 0, 1, 2, ... with `concurrency` writes in flight
 * on one connection, until `count` writes were sent or `durationSec` passed.
 */
export async function runWriter(
  server: RunningServer,
  options: { concurrency: number; keyOf: (index: number) => string; count?: number; durationSec?: number },
): Promise<WriterResult> {
  const connection = new GrpcConnection(server);
  const startUs = monotonicUs();
  const deadlineUs = options.durationSec !== undefined ? startUs + options.durationSec * 1e6 : Number.POSITIVE_INFINITY;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const result: WriterResult = { ok: 0, failed: 0, startUs, endUs: startUs };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < limit && monotonicUs() < deadlineUs) {
      const { method, body } = setBody(server, options.keyOf(next++), timedValue());
      try {
        await connection.call(method, body);
        result.ok++;
      } catch (error) {
        result.failed++;
        result.firstError ??= (error as Error).message;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    connection.close();
  }
  result.endUs = monotonicUs();
  return result;
}

export interface WatchClient {
  readonly pid: number;
  reset(): Promise<void>;
  /** Resolves once `count` events arrived since the reset, or `timeoutMs` passed (then timedOut is set). */
  wait(count: number, timeoutMs: number): Promise<WatchClientStats>;
  stop(): Promise<void>;
}

/** The server's revision now, from a write of a key of its own. */
export async function currentRevision(server: RunningServer): Promise<number> {
  const { method, body } = setBody(server, 'bench-revision', 0);
  const response = await callOnce(server, method, body);
  if (server.name === 'etcd') return Number((decodeEtcdResponse(method, response).header as { revision: number }).revision);
  return SetResponse.decode(response).revision;
}

/**
 * Starts bench/watch-client.ts with `watchers` streams on PREFIX0/ ... and
 * resolves once they are all requested. They watch from the server's
 * current revision, so a write made before the server has registered
 * every stream still reaches them all.
 */
export async function startWatchClient(server: RunningServer, watchers: number, prefix: string): Promise<WatchClient> {
  const script = path.join(REPO_ROOT, 'bench', 'watch-client.ts');
  const startRevision = (await currentRevision(server)) + 1;
  const args = [
    '--import',
    'tsx',
    script,
    '--api',
    server.name,
    '--address',
    server.address,
    '--prefix',
    prefix,
    '--watchers',
    String(watchers),
  ];
  args.push('--start-revision', String(startRevision));
  const child: ChildProcess = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines: Array<(line: Record<string, unknown>) => void> = [];
  let failure: Error | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    if (typeof line.error === 'string') failure = new Error(`watch client: ${line.error}`);
    lines.shift()?.(line);
  });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      lines.push(resolve);
      void exited.then(() => reject(failure ?? new Error(`watch client exited:\n${stderr}`)));
    });
  const opened = await next();
  if (opened.open !== watchers) throw new Error(`watch client: unexpected first line ${JSON.stringify(opened)}`);
  const send = (command: string): void => void child.stdin?.write(`${command}\n`);
  return {
    pid: child.pid ?? 0,
    async reset() {
      const answer = next();
      send('reset');
      await answer;
    },
    async wait(count, timeoutMs) {
      const answer = next();
      send(`wait ${count} ${timeoutMs}`);
      return (await answer) as unknown as WatchClientStats;
    },
    async stop() {
      child.stdin?.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
