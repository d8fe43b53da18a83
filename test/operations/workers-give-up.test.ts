/**
 * kv-server --workers 2 whose workers keep dying (SIGKILLed more than 5
 * times within 60 s): the supervisor gives up and exits 1, the children's
 * log names the give-up as the reason they stop (not a SIGTERM nobody sent),
 * and one line on stderr says why the server stopped.
 */
import { clusterChildren, killCluster, type RunningServer, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

jest.setTimeout(120_000);

let server: RunningServer | undefined;
afterEach(async () => {
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

const restarts = (running: RunningServer): number => running.output().split('worker restarted').length - 1;

function logLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('a worker killed 6 times within 60 s: the supervisor gives up, the children stop naming that, one stderr line, exit 1', async () => {
  // At info level the log says "worker restarted" as each replacement serves, and each child's drain line.
  server = await startServer({ args: ['--workers', '2'], env: { KV_LOG_LEVEL: 'info' } });
  const running = server;
  const supervisor = running.child.pid as number;
  for (let kill = 1; kill <= 6; kill++) {
    const worker = clusterChildren(supervisor).find((c) => c.role === 'worker');
    if (worker === undefined) throw new Error(`no worker to kill:\n${running.output()}`);
    process.kill(worker.pid, 'SIGKILL');
    if (kill === 6) break;
    await pollUntil(
      `replacement ${kill} to serve`,
      () => {
        if (running.child.exitCode !== null) throw new Error(`the server exited ${running.child.exitCode}:\n${running.output()}`);
        return restarts(running) >= kill ? true : undefined;
      },
      30_000,
    );
  }
  await pollUntil('the server to exit', () => running.child.exitCode ?? undefined, 60_000);
  expect(await running.stop()).toBe(1);

  const output = running.output();
  const said = output.split('\n').filter((line) => line.startsWith('kv-server:'));
  expect(said).toEqual([
    'kv-server: a worker keeps failing (6 processes ended within 60 s, 5 restarts allowed): gave up and stopped the server; ' +
      'the log says how each ended',
  ]);
  const log = logLines(output);
  expect(log.filter((line) => line.msg === 'a worker keeps failing: giving up')).toHaveLength(1);
  // The worker still running drains, naming the give-up; nobody sent a stop signal, and no line says one did
  // (the workers' ends say SIGKILL).
  const drains = log.filter((line) => String(line.msg).startsWith('shutting down'));
  expect(drains.length).toBeGreaterThanOrEqual(1);
  for (const line of drains) {
    expect(line).toMatchObject({
      reason: 'the supervisor gave up: a worker keeps failing',
      msg: 'shutting down: finishing calls in flight',
    });
  }
  expect(log.filter((line) => line.signal !== undefined && line.signal !== 'SIGKILL')).toEqual([]);
});
