/**
 * One chaos run: a real kv-server (fsync always, the default) under load from
 * TypeScript and Go client processes, SIGKILLed and restarted on the same
 * data directory and address `kills` times. Every call lands in the history
 * directory (one JSON-lines file per client process), and every server
 * spawn, kill and stop in server.jsonl; test/chaos/go/cmd/chaos-check then
 * decides whether the history is linearizable.
 *
 * With `workers` (kv-server --workers N) the kills take turns: a worker
 * (the supervisor replaces it), the store owner (the supervisor restarts the
 * whole server) and every process at once (the harness restarts it). The
 * store owner is what applies writes, so in server.jsonl an instance is one
 * life of the owner: a worker's death ends no instance, and a write it
 * forwarded may still be applied until the owner dies.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTool } from '../support/find-tool';
import { REPO_ROOT, clusterChildren, isAlive, spawnServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

export const CHAOS_GO_MODULE = path.join(REPO_ROOT, 'test/chaos/go');
const TOOLS_DIR = path.join(REPO_ROOT, '.tools/chaos');

export interface ChaosTools {
  client: string;
  check: string;
}

/** Builds the Go chaos client and checker into .tools/chaos (a no-op for Go's cache when nothing changed). */
export async function buildChaosTools(): Promise<ChaosTools> {
  const go = findTool('go');
  if (go === undefined) throw new Error('go is not on PATH; the chaos run needs it for its Go clients and the checker');
  await promisify(execFile)(go, ['build', '-o', TOOLS_DIR + path.sep, './cmd/chaos-client', './cmd/chaos-check'], {
    cwd: CHAOS_GO_MODULE,
  });
  return { client: path.join(TOOLS_DIR, 'chaos-client'), check: path.join(TOOLS_DIR, 'chaos-check') };
}

export interface ChaosOptions {
  tools: ChaosTools;
  /** Where the history goes (created if missing). */
  historyDir: string;
  /** SIGKILLs in this run. */
  kills: number;
  /** Keys k0..k(N-1) the clients share (default 4). */
  keys?: number;
  tsClients?: number;
  goClients?: number;
  /** How long each server instance serves before it is killed: uniform in [min, max] ms (default 300–1500). */
  upMs?: [number, number];
  seed?: number;
  /** Run kv-server --workers N (N > 1) and kill its processes in turn; default: one process. */
  workers?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface ChaosRun {
  historyDir: string;
  kills: number;
  seconds: number;
}

/** CLOCK_MONOTONIC in ns, the clock every client records with. */
function now(): bigint {
  return process.hrtime.bigint();
}

interface Instance {
  child: ChildProcess;
  address: string;
  exited: Promise<number | null>;
  /** The pid server.jsonl names for this life: the server's, or with workers the store owner's. */
  pid: number;
}

/** What the kills of a run with workers take turns at. */
const WORKER_KILLS = ['worker', 'owner', 'all'] as const;

export async function runChaos(options: ChaosOptions): Promise<ChaosRun> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const [minUp, maxUp] = options.upMs ?? [300, 1500];
  let seed = options.seed ?? Date.now() % 2 ** 31;
  const rand = (): number => {
    // A small LCG is enough to vary kill timing reproducibly from the seed.
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  fs.mkdirSync(options.historyDir, { recursive: true });
  const dataDir = makeTempDir('kv-chaos-data-');
  const events = fs.openSync(path.join(options.historyDir, 'server.jsonl'), 'w');
  const serverLog = fs.openSync(path.join(options.historyDir, 'server.log'), 'w');
  const event = (name: string, pid: number | undefined, at: bigint): void => {
    fs.writeSync(events, `{"event":"${name}","pid":${pid ?? -1},"at":${at}}\n`);
  };

  /** Starts kv-server on `listen` and waits until it serves; records spawn and ready. */
  const workerArgs = options.workers === undefined ? [] : ['--workers', String(options.workers)];
  const startInstance = async (listen: string): Promise<Instance> => {
    const at = now();
    const child = spawnServer(['--listen', listen, '--data-dir', dataDir, '--fsync', 'always', ...workerArgs]);
    if (options.workers === undefined) event('spawn', child.pid, at);
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      fs.writeSync(serverLog, chunk);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const address = await pollUntil(
      'kv-server to listen',
      () => {
        const match = /kv-server listening on (\S+)/.exec(output);
        if (match) return match[1];
        if (gone) throw new Error(`kv-server exited before it was ready (data directory ${dataDir}):\n${output}`);
        return undefined;
      },
      30_000,
    ).catch((error: unknown) => {
      // Not left running: with --workers, its children go too.
      for (const part of clusterChildren(child.pid as number)) process.kill(part.pid, 'SIGKILL');
      child.kill('SIGKILL');
      throw error;
    });
    if (options.workers === undefined) {
      event('ready', child.pid, now());
      return { child, address, exited, pid: child.pid as number };
    }
    const owner = ownerOf(child.pid as number);
    if (owner === undefined) throw new Error(`kv-server ${child.pid} said it listens but has no store owner`);
    event('spawn', owner, at);
    event('ready', owner, now());
    return { child, address, exited, pid: owner };
  };

  /** One of the kills of a run with workers; the server serves again when it returns. */
  const killPart = async (kind: (typeof WORKER_KILLS)[number]): Promise<string> => {
    const supervisor = server.child.pid as number;
    const parts = clusterChildren(supervisor);
    if (kind === 'all') {
      server.child.kill('SIGKILL');
      for (const part of parts) process.kill(part.pid, 'SIGKILL');
      await server.exited;
      await pollUntil('every process of the server to be gone', () => (parts.some((p) => isAlive(p.pid)) ? undefined : true));
      event('kill', server.pid, now());
      const before = server.pid;
      server = await startInstance(server.address);
      return `every process killed (owner ${before}), supervisor ${server.child.pid} serving`;
    }
    const victim = parts.find((p) => p.role === kind);
    if (victim === undefined) throw new Error(`kv-server ${supervisor} has no ${kind} to kill`);
    process.kill(victim.pid, 'SIGKILL');
    await pollUntil(`${kind} ${victim.pid} to be gone`, () => (isAlive(victim.pid) ? undefined : true));
    if (kind === 'worker') {
      await pollUntil(
        'a new worker',
        () =>
          clusterChildren(supervisor).filter((p) => p.role === 'worker' && p.pid !== victim.pid).length === options.workers
            ? true
            : undefined,
        30_000,
      );
      return `worker ${victim.pid} killed and replaced`;
    }
    // The next owner may take requests from now on: its life starts here, before it is even forked.
    const died = now();
    event('kill', victim.pid, died);
    const owner = await pollUntil(
      'a new owner and workers',
      () => {
        const now_ = clusterChildren(supervisor);
        const next = now_.find((p) => p.role === 'owner' && p.pid !== victim.pid);
        return next !== undefined && now_.filter((p) => p.role === 'worker').length === options.workers ? next.pid : undefined;
      },
      30_000,
    );
    event('spawn', owner, died);
    server = { ...server, pid: owner };
    return `owner ${victim.pid} killed, owner ${owner} serving`;
  };

  let server = await startInstance('127.0.0.1:0');
  const address = server.address;
  log(`server ${server.child.pid} on ${address}, data in ${dataDir}`);
  const clients = [
    startClient('ts', process.execPath, [
      '--import',
      'tsx',
      path.join(__dirname, 'ts-chaos-client.ts'),
      ...clientArgs('--', address, options.tsClients ?? 3, options.keys ?? 4, path.join(options.historyDir, 'ts.jsonl'), rand),
    ]),
    startClient(
      'go',
      options.tools.client,
      clientArgs('-', address, options.goClients ?? 3, options.keys ?? 4, path.join(options.historyDir, 'go.jsonl'), rand),
    ),
  ];
  try {
    await Promise.all(clients.map((c) => c.ready));

    for (let kill = 1; kill <= options.kills; kill++) {
      await delay(minUp + rand() * (maxUp - minUp));
      if (options.workers !== undefined) {
        log(`kill ${kill}/${options.kills}: ${await killPart(WORKER_KILLS[(kill - 1) % WORKER_KILLS.length])}`);
        continue;
      }
      const pid = server.child.pid;
      server.child.kill('SIGKILL');
      await server.exited;
      event('kill', pid, now());
      server = await startInstance(address);
      log(`kill ${kill}/${options.kills}: pid ${pid} killed, pid ${server.child.pid} serving`);
    }
    await delay(minUp + rand() * (maxUp - minUp));
    // Clients first, so that no call is in flight when the server stops.
    for (const c of clients) c.child.stdin?.end();
    await Promise.all(clients.map((c) => c.done));
    const pid = server.child.pid;
    server.child.kill('SIGTERM');
    const code = await server.exited;
    event('stop', server.pid, now());
    if (code !== 0) throw new Error(`kv-server ${pid} exited ${code} on SIGTERM after the run; see ${options.historyDir}/server.log`);
  } finally {
    for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    const parts = clusterChildren(server.child.pid as number);
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    for (const part of parts) if (isAlive(part.pid)) process.kill(part.pid, 'SIGKILL');
    await server.exited;
    fs.closeSync(events);
    fs.closeSync(serverLog);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return { historyDir: options.historyDir, kills: options.kills, seconds: (Date.now() - started) / 1000 };
}

/** The store owner of a --workers server, once its supervisor says it listens. */
function ownerOf(supervisor: number): number | undefined {
  return clusterChildren(supervisor).find((p) => p.role === 'owner')?.pid;
}

function clientArgs(dash: string, address: string, clients: number, keys: number, out: string, rand: () => number): string[] {
  return [
    `${dash}addr`,
    address,
    `${dash}clients`,
    String(clients),
    `${dash}keys`,
    String(keys),
    `${dash}out`,
    out,
    `${dash}seed`,
    String(Math.floor(rand() * 2 ** 31)),
  ];
}

interface ClientProcess {
  child: ChildProcess;
  /** Resolves once the client printed "ready <ns>" with a clock reading between its spawn and now. */
  ready: Promise<void>;
  /** Resolves when it exited 0 after stdin closed; rejects otherwise. */
  done: Promise<void>;
}

function startClient(name: string, command: string, args: string[]): ClientProcess {
  const spawned = now();
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const ready = pollUntil(
    `the ${name} clients to start`,
    () => {
      const match = /^ready (\d+)$/m.exec(stdout);
      if (match) {
        // The same clock in every process, or intervals from different clients cannot be compared.
        const theirs = BigInt(match[1]);
        if (theirs < spawned || theirs > now()) {
          throw new Error(`the ${name} clients' clock (${theirs}) is not this process's CLOCK_MONOTONIC (${spawned}..${now()})`);
        }
        return true;
      }
      if (exitCode !== undefined) throw new Error(`the ${name} clients exited ${exitCode} before they were ready:\n${stderr}`);
      return undefined;
    },
    30_000,
  ).then(() => undefined);
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} clients did not finish within 60 s of being told to stop`)), 60_000);
    void exited.then((code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`the ${name} clients exited ${code}:\n${stderr}`));
    });
  });
  // Reported through ready/done; never an unhandled rejection.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  return { child, ready, done };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CheckSummary {
  dir: string;
  result: 'Ok' | 'Illegal' | 'Unknown';
  linearizable: boolean;
  records: number;
  operations: number;
  by_status: Record<string, number>;
  indefinite_writes: number;
  dropped_reads: number;
  dropped_writes: number;
  clients: number;
  keys: number;
  kills: number;
  revision_violations: string[] | null;
  check_ms: number;
  visualization?: string;
}

/**
 * Runs chaos-check on a history directory: its summary and exit code (0
 * linearizable, 1 not, 2 not decided within `timeoutMs`, which fails a run
 * just the same).
 */
export async function checkHistory(
  tools: ChaosTools,
  historyDir: string,
  timeoutMs = 300_000,
): Promise<{ code: number; summary: CheckSummary }> {
  const child = spawn(tools.check, ['-dir', historyDir, '-timeout', `${timeoutMs}ms`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code === null || code > 2) throw new Error(`chaos-check failed (exit ${code}) on ${historyDir}:\n${stderr}${stdout}`);
  return { code, summary: JSON.parse(stdout) as CheckSummary };
}
