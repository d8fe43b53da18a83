/**
 * --max-txn-ops reaches the etcd engine as it does the file engine: a
 * frontend started with a lower limit refuses a larger Txn with kv's own
 * message, before etcd sees it (it was fixed at 128 whatever the flag said).
 * A frontend whose limit is above etcd's own passes the Txn on, and etcd's
 * refusal comes back as one short line naming etcd's limit.
 */
import { status } from '@grpc/grpc-js';
import { Compare, KvClient, KvError, Op } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';

const describeEtcd = describeWithEtcd();

describeEtcd('--max-txn-ops with --engine etcd', () => {
  let cluster: EtcdCluster;
  let frontend: Frontend;
  let above: Frontend;
  let kv: KvClient;
  let kvAbove: KvClient;
  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    frontend = await startFrontend(cluster, 'max-txn-ops/', ['--max-txn-ops', '4']);
    kv = new KvClient(frontend.address);
    // Above etcd's own --max-txn-ops (its default, 128): such a Txn reaches etcd, which refuses it.
    above = await startFrontend(cluster, 'max-txn-ops-above/', ['--max-txn-ops', '1000']);
    kvAbove = new KvClient(above.address, { retry: { attempts: 1 } });
  });
  afterAll(async () => {
    kv?.close();
    kvAbove?.close();
    await frontend?.server.stop();
    await above?.server.stop();
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

  /** etcd's refusal, as the caller gets it: INVALID_ARGUMENT, one short line that names etcd's limit and what to do. */
  function expectEtcdLimit(error: unknown, starts: string): void {
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    const message = (error as KvError).message;
    expect(message.startsWith(starts)).toBe(true);
    expect(message).toContain("etcd's --max-txn-ops (128 by default)");
    expect(message).toContain('nothing was applied');
    expect(message).toContain('raise --max-txn-ops on every etcd member');
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThanOrEqual(200);
  }

  test('more ops than etcd allows: refused by etcd, said in one short line, nothing written', async () => {
    const error = await kvAbove
      .txn()
      .then(...Array.from({ length: 200 }, (_, i) => Op.set(`s/${i}`, i)))
      .commit()
      .catch((e: unknown) => e);
    expectEtcdLimit(error, 'the transaction has more operations than ');
    expect(await kvAbove.get('s/0')).toBeUndefined();
  });

  test('more keys compared than etcd allows (kv reads them in one etcd Txn first): one short line with the count', async () => {
    const error = await kvAbove
      .txn()
      .if(...Array.from({ length: 200 }, (_, i) => Compare.version(`c/${i}`, '==', 0)))
      .then(Op.set('x', 1))
      .commit()
      .catch((e: unknown) => e);
    expectEtcdLimit(error, 'the transaction compares or updates 200 keys, ');
    expect(await kvAbove.get('x')).toBeUndefined();
  });
});
