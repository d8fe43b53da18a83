/**
 * kv-server --workers 2 whose supervisor is SIGKILLed: its children stop as
 * it would have had them stop (a drain, the store closed, a log line naming
 * why) instead of vanishing at once as Node's cluster module would have them.
 */
import { KvClient } from '@kv/client';
import { clusterChildren, isAlive, type RunningServer, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

jest.setTimeout(120_000);

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

test('the supervisor SIGKILLed: the owner and workers drain, say why, and close the store; a restart finds every write', async () => {
  const dataDir = makeTempDir('kv-supervisor-gone-');
  const server = await startServer({ dataDir, args: ['--workers', '2'], env: { KV_LOG_LEVEL: 'info' } });
  servers.push(server);
  const kv = new KvClient(server.address);
  let revision = 0;
  try {
    for (let i = 0; i < 20; i++) revision = await kv.set(`k/${i}`, { i });
  } finally {
    kv.close();
  }
  const children = clusterChildren(server.child.pid as number);
  expect(children.map((c) => c.role).sort()).toEqual(['owner', 'worker', 'worker']);
  await server.kill();
  await pollUntil('the children to end', () => (children.every((c) => !isAlive(c.pid)) ? true : undefined), 60_000);

  const log = server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  // Each worker's drain names the reason; the owner closes the store and says so.
  const drains = log.filter((line) => String(line.msg).startsWith('shutting down') && line.reason === 'the supervisor is gone');
  expect(drains.map((line) => line.process).sort()).toEqual(['worker-1', 'worker-2']);
  expect(log.filter((line) => line.process === 'owner' && line.msg === 'stopped; data directory released')).toHaveLength(1);
  // The owner closed the store: nothing for a restart to cut off the log.
  const restarted = await startServer({ dataDir, env: { KV_LOG_LEVEL: 'info' } });
  servers.push(restarted);
  expect(restarted.output()).not.toMatch(/cutting the zeros written ahead off/);
  const check = new KvClient(restarted.address);
  try {
    expect((await check.get('k/19'))?.modRevision).toBe(revision);
  } finally {
    check.close();
  }
});
