/**
 * kvctl watch and a server that is not there: at the start it exits 4 like
 * every other command (it waited in silence forever); once started it
 * resumes across a restart and says so on stderr, once per outage.
 */
import { rmSync } from 'node:fs';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { KvClient } from '@kv/client';
import { freePort } from '../support/free-port';
import { runKvctl, startKvctl } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/** Polls until `check` passes or the deadline is past (then its last failure is thrown). */
async function eventually(check: () => void, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

test('a watch of an endpoint where no server listens exits 4 with one line, as get does', async () => {
  const endpoint = `127.0.0.1:${await freePort()}`;
  const started = Date.now();
  const watch = await runKvctl(['--endpoint', endpoint, 'watch', 'x'], { timeoutMs: 20_000 });
  const watchMs = Date.now() - started;
  expect({ code: watch.code, stdout: watch.stdout }).toEqual({ code: 4, stdout: '' });
  expect(watch.stderr).toMatch(new RegExp(`^kvctl: ${endpoint}: no connection: [^\\n]*ECONNREFUSED[^\\n]*\\(UNAVAILABLE\\)\\n$`));
  const getStarted = Date.now();
  const get = await runKvctl(['--endpoint', endpoint, 'get', 'x'], { timeoutMs: 20_000 });
  expect(get.code).toBe(4);
  // About as long as a read takes to give up (kvctl's own start-up included in both).
  expect(watchMs).toBeLessThan(Date.now() - getStarted + 3000);
});

test('an endpoint that takes the connection but never answers: watch and get give up after --timeout-ms, exit 4, in plain words', async () => {
  // A stopped server, or something that does not speak gRPC: the TCP connection is accepted, nothing comes back.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const endpoint = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  try {
    for (const command of [
      ['watch', 'x'],
      ['get', 'x'],
    ]) {
      const started = Date.now();
      const run = await runKvctl(['--endpoint', endpoint, '--timeout-ms', '1500', ...command], { timeoutMs: 30_000 });
      const tookMs = Date.now() - started;
      expect({ command, code: run.code, stdout: run.stdout }).toEqual({ command, code: 4, stdout: '' });
      // One line naming the endpoint, none of grpc-js's internal timings ("name resolution", "LB pick").
      const said = command[0] === 'watch' ? 'the server did not answer the watch within 1500 ms' : 'deadline exceeded after [\\d.]+ s';
      expect(run.stderr).toMatch(new RegExp(`^kvctl: ${endpoint}: ${said}[^\\n]*\\(DEADLINE_EXCEEDED\\)\\n$`));
      expect(run.stderr).not.toMatch(/LB pick|name resolution|CANCELLED/);
      // Not only "nothing answered at the address", which sends one looking at the address: a server can take the connection and say nothing.
      if (command[0] === 'get')
        expect(run.stderr).toContain('a server there took the connection but did not answer (stopped, or too busy)');
      // The watch used to try 6 times for 10 s each (a minute) and then exit 8 with "Cancelled on client".
      expect(tookMs).toBeLessThan(1500 + 6000);
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

describe('a server restart under a running watch', () => {
  let server: RunningServer;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = makeTempDir('kvctl-watch-outage-');
    server = await startServer({ dataDir });
  });

  afterAll(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('resumes, and says on stderr that it lost the stream and that it resumed, once each', async () => {
    const address = server.address;
    const watch = startKvctl(['watch', 'w/key'], { KV_ENDPOINTS: address });
    const { child } = watch;
    const kv = new KvClient(address);
    try {
      // Until the watch has started, a set may come before it: set until one is seen.
      let first = 0;
      await eventually(() => {
        if (!watch.stdout().includes('"value":1')) {
          void kv.set('w/key', 1).then((revision) => (first = revision));
          throw new Error(`no event yet: ${watch.stdout()}${watch.stderr()}`);
        }
      });
      await server.stop();
      await eventually(() => expect(watch.stderr()).toMatch(/lost the watch stream/));
      // Down for longer than a read would retry (about 2 s): the watch goes on waiting, and says nothing more.
      const lostAt = Date.now();
      await eventually(() => {
        expect(child.exitCode).toBeNull();
        expect(Date.now() - lostAt).toBeGreaterThan(3000);
      });
      server = await startServer({ dataDir, args: ['--listen', address] });
      const second = await kv.set('w/key', 2);
      await eventually(() => expect(watch.stdout()).toContain('"value":2'));
      expect(second).toBeGreaterThan(first);
      expect(first).toBeGreaterThan(0);
      // "after N": every change through N was printed, and the next one printed is past it.
      const told =
        /^kvctl: lost the watch stream \([^\n]+\); resuming after revision (\d+)\nkvctl: watch resumed after revision (\d+)\n$/.exec(
          watch.stderr(),
        );
      expect(told).not.toBeNull();
      expect(Number(told?.[1])).toBe(Number(told?.[2]));
      expect(Number(told?.[1])).toBeGreaterThanOrEqual(first);
      expect(Number(told?.[1])).toBeLessThan(second);
    } finally {
      kv.close();
      child.kill('SIGINT');
    }
    // Ended by Ctrl-C, as every kvctl command: a shell reports 130.
    expect(await watch.ended).toEqual({ code: null, signal: 'SIGINT' });
  });
});
