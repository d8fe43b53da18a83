/**
 * kv-server --workers 2 started on port 0 (the README's "port 0 picks a free
 * one"): workers started to replace ones that died listen on the gRPC and
 * HTTP ports the ready line announced, also when every worker died at once
 * (Node's cluster primary then closes the shared socket, and a listen on
 * port 0 would get a new port). If another process took such a port
 * meanwhile, the server says so in one line and exits 1: it never moves.
 */
import net from 'node:net';
import { KvClient } from '@kv/client';
import { clusterChildren, killCluster, type RunningServer, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

jest.setTimeout(120_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
let taken: net.Server | undefined;
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
  taken?.close();
  taken = undefined;
});

function workerPids(running: RunningServer): number[] {
  return clusterChildren(running.child.pid as number)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid);
}

const restarts = (running: RunningServer): number => running.output().split('worker restarted').length - 1;

/** SIGKILLs the given workers together and resolves once the supervisor says each replacement serves. */
async function killWorkers(running: RunningServer, pids: number[]): Promise<void> {
  const before = restarts(running);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await pollUntil(
    'the replacement workers to serve',
    () => {
      if (running.child.exitCode !== null) throw new Error(`the server exited ${running.child.exitCode}:\n${running.output()}`);
      const now = workerPids(running);
      return restarts(running) >= before + pids.length && now.length === 2 && !now.some((pid) => pids.includes(pid)) ? true : undefined;
    },
    60_000,
  );
}

/** A Get of `key` through a new connection to the announced gRPC address, and one through the announced HTTP address. */
async function readThroughAnnouncedPorts(running: RunningServer, key: string): Promise<[unknown, unknown]> {
  const kv = new KvClient(running.address, { retry: { attempts: 1 }, deadlineMs: 5_000 });
  open.push(kv);
  const viaGrpc = await kv.get(key).then(
    (entry) => entry?.value,
    (error: unknown) => `gRPC ${running.address}: ${String(error)}`,
  );
  const viaHttp = await fetch(`http://${running.httpAddress}/kv.v1.KeyValueService/Get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  }).then(
    async (response) => ((await response.json()) as { entry?: { value?: unknown } }).entry?.value,
    (error: unknown) => `HTTP ${running.httpAddress}: ${String((error as { cause?: unknown }).cause ?? error)}`,
  );
  return [viaGrpc, viaHttp];
}

test('every worker killed at once: the replacements serve on the announced gRPC and HTTP ports (port 0 given), and so does one replaced later', async () => {
  // At info level the log says "worker restarted" as each replacement serves.
  server = await startServer({ args: ['--workers', '2', '--http-listen', '127.0.0.1:0'], env: { KV_LOG_LEVEL: 'info' } });
  const writer = new KvClient(server.address);
  open.push(writer);
  await writer.set('k', 1);
  expect(await readThroughAnnouncedPorts(server, 'k')).toEqual([1, 1]);

  await killWorkers(server, workerPids(server));
  expect(await readThroughAnnouncedPorts(server, 'k')).toEqual([1, 1]);

  // The replacements now listen on the announced ports themselves: one of them replaced joins the other.
  await killWorkers(server, workerPids(server).slice(0, 1));
  expect(await readThroughAnnouncedPorts(server, 'k')).toEqual([1, 1]);
  expect(server.output().match(/kv-server listening on/g)).toHaveLength(1);
  expect(server.child.exitCode).toBeNull();
});

test('every worker killed at once and the announced port taken meanwhile: one line naming it, exit 1, no move to another port', async () => {
  server = await startServer({ args: ['--workers', '2'] });
  const running = server;
  const port = Number(running.address.slice(running.address.lastIndexOf(':') + 1));
  for (const pid of workerPids(running)) process.kill(pid, 'SIGKILL');
  // Free once the supervisor has seen both workers end; their replacements take far longer to start.
  taken = await pollUntil('the announced port to be free', () => {
    const holder = net.createServer();
    return new Promise<net.Server | undefined>((resolve) => {
      holder.once('error', () => resolve(undefined));
      holder.listen(port, '127.0.0.1', () => resolve(holder));
    });
  });
  const code = await pollUntil('the server to exit', () => running.child.exitCode ?? undefined, 60_000);
  expect(code).toBe(1);
  const said = running
    .output()
    .split('\n')
    .filter((line) => line.startsWith('kv-server:'));
  expect(said).toEqual([`kv-server: cannot listen on ${running.address} (--listen): bind EADDRINUSE ${running.address}`]);
  expect(running.output()).toMatch(/a worker keeps failing: giving up/);
});
