/**
 * One etcd follower that hangs (SIGSTOP: its connections stay open, nothing
 * answers) while the other two members are fine. The frontends must not
 * take it for the cluster: an idle frontend's health (its probe, a read)
 * stays SERVING, and reads through another keep succeeding. Each try of a
 * read has its own deadline, a quarter of --etcd-timeout-ms, and the next
 * try goes to another member; with one deadline for the whole budget, a
 * try that landed on the hung member took all of it (NOT_SERVING, reads
 * UNAVAILABLE after 5 s).
 */
import { credentials } from '@grpc/grpc-js';
import { KvClient } from '@kv/client';
import { HealthCheckResponse_ServingStatus, HealthClient } from '../../src/gen/health/v1/health';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';

const describeEtcd = describeWithEtcd();

/** How long the follower stays stopped while health and reads are watched. */
const HUNG_MS = 10_000;

describeEtcd('one etcd follower hung (SIGSTOP), a majority fine', () => {
  let cluster: EtcdCluster;
  let idle: Frontend;
  let busy: Frontend;
  const clients: Array<{ close(): void }> = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster({ watchProgressMs: 1000 });
    const prefix = `hung-${process.pid}/`;
    [idle, busy] = await Promise.all([startFrontend(cluster, prefix), startFrontend(cluster, prefix)]);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([idle?.server.kill(), busy?.server.kill()]);
    await cluster?.stop();
  });

  test('an idle frontend stays SERVING and reads through another keep succeeding', async () => {
    // The SDK's own retries off: every answer of the frontend shows.
    const kv = new KvClient(busy.address, { deadlineMs: 10_000, retry: { attempts: 1 } });
    const health = new HealthClient(idle.address, credentials.createInsecure());
    clients.push(kv, health);
    await kv.set('hung/k', 'v');
    // Connections to every member, as a frontend that has been up a while has.
    for (let i = 0; i < 12; i++) await kv.get('hung/k');

    // Every status the idle frontend reports (health Watch sends each change).
    const statuses: string[] = [];
    const watch = health.watch({ service: 'kv.v1.KeyValueService' });
    watch.on('data', (r: { status: HealthCheckResponse_ServingStatus }) => statuses.push(HealthCheckResponse_ServingStatus[r.status]));
    watch.on('error', () => undefined);
    const first = new Promise((resolve) => watch.once('data', resolve));
    await first;

    const leader = await cluster.leader();
    const follower = (leader + 1) % 3;
    const pid = cluster.pid(follower) as number;
    process.kill(pid, 'SIGSTOP');
    const failures: string[] = [];
    let reads = 0;
    let slowest = 0;
    try {
      const until = Date.now() + HUNG_MS;
      while (Date.now() < until) {
        const started = Date.now();
        try {
          expect(await kv.get('hung/k')).toMatchObject({ value: 'v' });
          reads++;
        } catch (error) {
          failures.push((error as Error).message);
        }
        slowest = Math.max(slowest, Date.now() - started);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
      watch.cancel();
    }
    expect(statuses[0]).toBe('SERVING');
    expect(statuses.filter((s) => s !== 'SERVING')).toEqual([]);
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(10);
    // A try that met the hung member waited its own deadline (a quarter of the default 5 s), then the read went on elsewhere:
    // at worst three such tries (then that member's circuit opens), within the 5 s budget.
    expect(slowest).toBeLessThan(5000);
    process.stdout.write(`hung follower: ${reads} reads in ${HUNG_MS} ms, the slowest ${slowest} ms; health: ${statuses.join(', ')}\n`);
  }, 40_000);
});
