/**
 * kv-server --workers 2: a worker that ends is replaced whenever it ends.
 * One killed before it served, as the server starts, is started again (it
 * took the whole server down, without a word); one that served and ended
 * before the rest of its generation served is replaced once the server
 * serves; and a
 * replacement that hangs as it starts (here SIGSTOPped) does not hold up the
 * replacement of another worker.
 */
import fs from 'node:fs';
import net from 'node:net';
import { KvClient } from '@kv/client';
import { clusterChildren, killCluster, type RunningServer, spawnServer, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

jest.setTimeout(180_000);

let server: RunningServer | undefined;
let supervisorPid: number | undefined;
const stopped: number[] = [];
const open: KvClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const pid of stopped.splice(0)) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone already.
    }
  }
  for (const kv of open.splice(0)) kv.close();
  if (server !== undefined) await killCluster(server);
  server = undefined;
  if (supervisorPid !== undefined) {
    for (const pid of [...clusterChildren(supervisorPid).map((child) => child.pid), supervisorPid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
  supervisorPid = undefined;
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** The worker in `slot` (1 to N) of the server whose supervisor is `pid`, if it runs. */
function workerInSlot(pid: number, slot: number): number | undefined {
  for (const child of clusterChildren(pid)) {
    if (child.role !== 'worker') continue;
    try {
      if (fs.readFileSync(`/proc/${child.pid}/environ`, 'latin1').split('\0').includes(`KV_WORKER_SLOT=${slot}`)) return child.pid;
    } catch {
      // Ended while we looked.
    }
  }
  return undefined;
}

function workerPids(pid: number): number[] {
  return clusterChildren(pid)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid);
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * kv-server --workers 2 on `listen`, started without waiting for its ready line: its supervisor's pid, everything it
 * wrote so far, and a check that throws (with that output) once it has ended.
 */
function spawnCluster(listen: string, env: Record<string, string> = {}): { pid: number; output: () => string; alive: () => void } {
  const dataDir = makeTempDir();
  dirs.push(dataDir);
  const child = spawnServer(['--listen', listen, '--data-dir', dataDir, '--workers', '2'], env);
  const pid = child.pid as number;
  supervisorPid = pid;
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const alive = (): void => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server ended (exit ${child.exitCode}):\n${output}`);
  };
  return { pid, output: () => output, alive };
}

/** Resolves with the value a Get of `key` through a new connection answers, or undefined if none answers. */
async function getThrough(address: string, key: string): Promise<unknown> {
  const kv = new KvClient(address, { retry: { attempts: 1 }, deadlineMs: 2_000 });
  open.push(kv);
  return kv.get(key).then(
    (entry) => entry?.value ?? null,
    () => undefined,
  );
}

test('a worker that served and ended while the server was starting is replaced once the server serves', async () => {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const { pid, output, alive } = spawnCluster(address, { KV_LOG_LEVEL: 'info' });

  // Worker 2 held back as it starts; worker 1 serves alone, then ends before the server has said it is ready.
  const second = await pollUntil('worker 2 to be started', () => workerInSlot(pid, 2), 30_000);
  process.kill(second, 'SIGSTOP');
  stopped.push(second);
  await pollUntil(
    'worker 1 to serve',
    async () => {
      alive();
      return (await getThrough(address, 'k')) === null ? true : undefined;
    },
    60_000,
  );
  expect(output()).not.toMatch(/kv-server listening on/);
  const first = workerInSlot(pid, 1) as number;
  process.kill(first, 'SIGKILL');
  await pollUntil('worker 1 to be gone', () => (workerPids(pid).includes(first) ? undefined : true));
  process.kill(second, 'SIGCONT');
  stopped.splice(0);

  await pollUntil('the server to say it is ready', () => (alive(), /kv-server listening on/.test(output()) ? true : undefined), 60_000);
  await pollUntil(
    'a replacement of worker 1 to serve',
    () => {
      alive();
      const now = workerPids(pid);
      return now.length === 2 && !now.includes(first) && /worker restarted/.test(output()) ? true : undefined;
    },
    60_000,
  );
  expect(output()).toMatch(/a worker process ended: starting another/);
  // Each line names the process that wrote it.
  expect(output()).toMatch(/^\{[^\n]*"process":"owner"[^\n]*"msg":"store opened"/m);
  expect(output()).toMatch(/^\{[^\n]*"process":"supervisor"[^\n]*"msg":"a worker process ended: starting another"/m);
  // Said once for the whole server, by the supervisor: not by each worker and each replacement.
  expect(output().match(/^\{[^\n]*"msg":"no --auth-file/gm)).toEqual([expect.stringContaining('"process":"supervisor"')]);
  const kv = new KvClient(address);
  open.push(kv);
  await kv.set('k', 'served');
  expect((await kv.get('k'))?.value).toBe('served');
});

test('a worker killed before it served, as the server starts, is started again: the server starts and serves with both', async () => {
  const { pid, output, alive } = spawnCluster('127.0.0.1:0');

  const first = await pollUntil('worker 1 to be started', () => workerInSlot(pid, 1), 30_000);
  process.kill(first, 'SIGKILL');
  expect(output()).not.toMatch(/kv-server listening on/);
  const address = await pollUntil(
    'the server to say it is ready',
    () => (alive(), /kv-server listening on (\S+)/.exec(output())?.[1]),
    60_000,
  );
  expect(output()).toMatch(/a worker process ended before it served: starting another/);
  const now = workerPids(pid);
  expect(now).toHaveLength(2);
  expect(now).not.toContain(first);
  const kv = new KvClient(address);
  open.push(kv);
  await kv.set('k', 'served');
  expect((await kv.get('k'))?.value).toBe('served');
});

test('a replacement that hangs as it starts does not hold up the replacement of another worker', async () => {
  server = await startServer({ args: ['--workers', '2'], env: { KV_LOG_LEVEL: 'info' } });
  const running = server;
  const pid = running.child.pid as number;
  const kv = new KvClient(running.address);
  open.push(kv);
  await kv.set('k', 'before');
  const [a, b] = workerPids(pid);
  const restarts = (): number => running.output().split('worker restarted').length - 1;

  // a's replacement is stopped before it serves.
  process.kill(a, 'SIGKILL');
  const hung = await pollUntil("a's replacement to be started", () => workerPids(pid).find((w) => w !== a && w !== b), 30_000);
  process.kill(hung, 'SIGSTOP');
  stopped.push(hung);
  expect(restarts()).toBe(0);

  // Then b ends: its replacement must serve though a's is still starting.
  process.kill(b, 'SIGKILL');
  await pollUntil(
    "b's replacement to serve on the announced port",
    async () => {
      if (running.child.exitCode !== null) throw new Error(`the server exited:\n${running.output()}`);
      return restarts() >= 1 && (await getThrough(running.address, 'k')) === 'before' ? true : undefined;
    },
    60_000,
  );

  // Once it runs again, the hung one serves too (on the announced port, started again there if it got another).
  process.kill(hung, 'SIGCONT');
  stopped.splice(0);
  await pollUntil('two workers to serve', () => (workerPids(pid).length === 2 && restarts() >= 2 ? true : undefined), 60_000);
  await kv.set('k', 'after');
  expect(await getThrough(running.address, 'k')).toBe('after');
});
