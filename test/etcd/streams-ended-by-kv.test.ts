/**
 * Streams kv ends itself (a keep-alive's one-refresh stream, a watch that is
 * closed) are not failures of the etcd member. etcd3 counts an error on a
 * stream still open for writing against the member (three in a row take it
 * out of service for 5 s) and closes every connection to it; a stream
 * cancelled by kv errs CANCELLED, so kv half-closes it first. Three clients
 * refreshing their leases at once took the member out, the leases expired
 * and their keys (a lock) were deleted.
 */
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';

const describeEtcd = describeWithEtcd();

describeEtcd('streams kv ends itself, over etcd', () => {
  let cluster: EtcdCluster;
  let store: EtcdStore | undefined;

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: `ended-${process.pid}/` });
  });
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  test('keep-alives three at a time, again and again, all answered; the member stays in service', async () => {
    const leases = await Promise.all([1, 2, 3].map(() => store!.grantLease(5000)));
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(leases.map((lease) => store!.keepAliveLease(lease.id)));
      expect(answers.map((a) => a.ttlMs)).toEqual([5000, 5000, 5000]);
    }
    await expect(store!.set('after-keep-alives', 1)).resolves.toMatchObject({ revision: expect.any(Number) as unknown });
  });

  test('watches opened and closed three at a time leave the member in service', async () => {
    for (let round = 0; round < 3; round++) {
      const watches = [1, 2, 3].map((i) => store!.watch({ key: `w/${i}` }));
      // Each has its stream (a first batch: progress or the change), then is closed.
      const { revision } = await store!.set(`w/${round}`, round);
      await Promise.all(watches.map((w) => w.next()));
      for (const w of watches) w.close();
      expect(revision).toBeGreaterThan(0);
    }
    const leases = await Promise.all([1, 2, 3].map(() => store!.grantLease(5000)));
    await Promise.all(leases.map((lease) => store!.keepAliveLease(lease.id)));
    await expect(store!.set('after-watches', 1)).resolves.toMatchObject({ revision: expect.any(Number) as unknown });
  });
});
