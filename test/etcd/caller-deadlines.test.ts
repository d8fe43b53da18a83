/**
 * Calls that run out of their own time are not the failure of an etcd
 * member. A frontend under a burst of Updates with short deadlines (each
 * waits its turn in the per-key queue, so many have little or no time left
 * when they reach etcd) must not take healthy members out of service: their
 * breakers (three failures in a row skip a member for 5 s) are for members
 * that do not answer, and a try sent with no time left, or cut short by
 * what is left of its caller's, fails through no fault of the member.
 * Before, other calls through the frontend then failed for about 5 s:
 * UNAVAILABLE, "no etcd endpoint answers right now".
 */
import { KvClient, type KvError } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';

const describeEtcd = describeWithEtcd();

describeEtcd('callers whose deadlines pass, an etcd cluster fine', () => {
  let cluster: EtcdCluster;
  let frontend: Frontend;
  const clients: Array<{ close(): void }> = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster();
    frontend = await startFrontend(cluster, `deadlines-${process.pid}/`);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await frontend?.server.kill();
    await cluster?.stop();
  });

  test('a burst of Updates of one key with short deadlines leaves every other call through the frontend served', async () => {
    // The SDK's own retries off: every answer of the frontend shows.
    const probe = new KvClient(frontend.address, { deadlineMs: 20_000, retry: { attempts: 1 } });
    const burst = new KvClient(frontend.address, { retry: { attempts: 1 } });
    clients.push(probe, burst);
    await probe.set('other', 'v');
    await burst.set('hot', {});
    for (let i = 0; i < 12; i++) await probe.get('other');

    const failures: string[] = [];
    let probing = true;
    let reads = 0;
    const probing$ = (async () => {
      while (probing) {
        try {
          expect(await probe.get('other')).toMatchObject({ value: 'v' });
          reads++;
        } catch (error) {
          failures.push(`${(error as KvError).reason}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    let timedOut = 0;
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 300 }, (_, i) => burst.update('hot', { [`f${i}`]: i }, { deadlineMs: 800 })),
      );
      timedOut += outcomes.filter((o) => o.status === 'rejected').length;
    }
    // Past the 5 s a member stays skipped once its breaker opened.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    probing = false;
    await probing$;
    process.stdout.write(`caller deadlines: ${timedOut} of 900 Updates failed in their 800 ms; ${reads} reads beside them\n`);
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(10);
  }, 90_000);
});
