/**
 * --workers: a stop takes at most the grace period and 5 s more, plus a
 * moment for the store owner to close the store, however the children
 * behave. The workers drain first, then the owner is asked; before, each
 * had the whole grace and 5 s of its own, one after the other: twice the
 * time, as long as systemd's TimeoutStopSec in the documented unit with the
 * defaults. An owner that had to be killed is said in one line.
 */
import { KvClient } from '@kv/client';
import { clusterChildren, isAlive, killCluster, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

test('with the store owner stopped (SIGSTOP) and a write waiting on it, SIGTERM ends the server within the grace, 5 s and 2 s more; exit 1, one line', async () => {
  const graceMs = 1000;
  const server = await startServer({ args: ['--workers', '2', '--shutdown-grace-ms', String(graceMs)] });
  const children = clusterChildren(server.child.pid as number);
  const owner = children.find((c) => c.role === 'owner');
  expect(owner).toBeDefined();
  const kv = new KvClient(server.address, { retry: { attempts: 1 }, deadlineMs: 60_000 });
  try {
    await kv.set('before', 1);
    process.kill(owner!.pid, 'SIGSTOP');
    // A write forwarded to the owner, which cannot answer: its worker cannot drain.
    const waiting = kv.set('hung', 1).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const asked = Date.now();
    process.kill(server.child.pid as number, 'SIGTERM');
    const code = await server.exited();
    const tookMs = Date.now() - asked;
    await waiting;
    expect(code).toBe(1);
    // The grace, its 5 s, the owner's 2 s to close, and 2.5 s of slack for a loaded machine: not twice the grace and 5 s.
    expect(tookMs).toBeLessThan(graceMs + 5000 + 2000 + 2500);
    expect(server.output()).toContain('kv-server: the store owner did not close the store within the grace period');
    // The workers stop by themselves, as a single server does: they wait for the owner's answers a moment past their
    // grace, not until the supervisor kills them. Only the owner (stopped) is killed.
    const killed = server
      .output()
      .split('\n')
      .filter((line) => line.includes('did not stop within the grace period'))
      .map((line) => (JSON.parse(line) as { child: string }).child);
    expect(killed).toEqual(['owner']);
    await pollUntil('every child to be gone', () => (children.every((c) => !isAlive(c.pid)) ? true : undefined), 5000);
  } finally {
    kv.close();
    if (isAlive(owner!.pid)) process.kill(owner!.pid, 'SIGCONT');
    if (server.child.exitCode === null) await killCluster(server);
  }
}, 60_000);
