/**
 * --max-txn-ops reaches the etcd engine as it does the file engine: a
 * frontend started with a lower limit refuses a larger Txn with kv's own
 * message, before etcd sees it (it was fixed at 128 whatever the flag said).
 */
import { status } from '@grpc/grpc-js';
import { KvClient, KvError, Op } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';

const describeEtcd = describeWithEtcd();

describeEtcd('--max-txn-ops with --engine etcd', () => {
  let cluster: EtcdCluster;
  let frontend: Frontend;
  let kv: KvClient;
  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    frontend = await startFrontend(cluster, 'max-txn-ops/', ['--max-txn-ops', '4']);
    kv = new KvClient(frontend.address);
  });
  afterAll(async () => {
    kv?.close();
    await frontend?.server.stop();
    await cluster?.stop();
  });

  test('a Txn within the flag runs; one over it is INVALID_ARGUMENT naming kv’s limit, and writes nothing', async () => {
    const four = await kv
      .txn()
      .then(...[0, 1, 2, 3].map((i) => Op.set(`a/${i}`, i)))
      .commit();
    expect(four.succeeded).toBe(true);
    const error = await kv
      .txn()
      .then(...[0, 1, 2, 3, 4].map((i) => Op.set(`b/${i}`, i)))
      .commit()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    expect((error as KvError).message).toBe('a transaction has at most 4 success ops; this one has 5');
    expect(await kv.get('b/0')).toBeUndefined();
  });
});
