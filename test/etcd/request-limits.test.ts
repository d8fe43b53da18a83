/**
 * The etcd engine at the size and op limits between kv and etcd, on a real
 * etcd (and a real etcd grpc-proxy): a request etcd will not take, however
 * far over its limit, is INVALID_ARGUMENT saying nothing was applied, never
 * a write of unknown outcome; an answer too large to reach kv is a clear
 * error for a read; and a Txn's ops are one etcd op each, so a branch kv
 * accepts fits etcd's --max-txn-ops (a clear used to count twice).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import { Etcd3, GRPCResourceExhastedError } from 'etcd3';
import { KvClient, KvError, Op } from '@kv/client';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import { fromEtcdError } from '../../src/store/etcd/etcd-errors';
import type { TxnOp } from '../../src/store/key-value-store';
import { describeWithEtcd, ETCD_BIN, freePort, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();

test('etcd answering a write with more than gRPC carries (2 GiB) is a write of unknown outcome; a read so answered is told to ask for less', () => {
  // etcd sends an answer only once it has carried the request out; its one limit on sending is gRPC's largest message.
  const lost = new GRPCResourceExhastedError(
    '8 RESOURCE_EXHAUSTED: grpc: trying to send message larger than max (2200000000 vs. 2147483647)',
  );
  expect(fromEtcdError(lost, 'write')).toMatchObject({
    code: 'UNAVAILABLE',
    message: expect.stringContaining('may or may not have been applied'),
  });
  expect(fromEtcdError(lost, 'read')).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('ask for less') });
});

test("grpc-js's own wording of a refused request (capitalized) is read as Go's is: a write refused for its size is INVALID_ARGUMENT, nothing applied", () => {
  const refused = new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: Received message larger than max (5000000 vs. 4194304)');
  expect(fromEtcdError(refused, 'write')).toMatchObject({
    code: 'INVALID_ARGUMENT',
    message: expect.stringContaining('nothing was applied'),
  });
});

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: unknown }> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('expected the call to fail');
  return outcome;
}

/** An etcd grpc-proxy (`etcd grpc-proxy start`) in front of the cluster, with its own flags; killed by pid. */
async function startGrpcProxy(cluster: EtcdCluster, flags: string[]): Promise<{ endpoint: string; stop(): void }> {
  const port = await freePort();
  const target = cluster.endpoints.map((e) => e.replace(/^http:\/\//, '')).join(',');
  const child: ChildProcess = spawn(
    ETCD_BIN,
    ['grpc-proxy', 'start', `--endpoints=${target}`, `--listen-addr=127.0.0.1:${port}`, ...flags],
    {
      stdio: 'ignore',
    },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  // Without etcd3's breaker, which would skip the proxy for 5 s after three tries while it starts.
  const probe = new Etcd3({ hosts: endpoint, faultHandling: { host: () => noop, global: noop } });
  try {
    await pollUntil(
      'the grpc-proxy to answer',
      () =>
        probe.kv.range({ key: Buffer.from('probe') }, { deadline: Date.now() + 1000 }).then(
          () => true,
          () => undefined,
        ),
      20_000,
    );
  } finally {
    probe.close();
  }
  return { endpoint, stop: () => child.pid !== undefined && process.kill(child.pid, 'SIGKILL') };
}

describeEtcd('the etcd engine at the limits between kv and etcd', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  const stores: EtcdStore[] = [];
  const stops: Array<() => unknown> = [];
  let namespaces = 0;
  const nextPrefix = (): string => `limits-${process.pid}/${++namespaces}/`;
  const openStore = async (options: Partial<Parameters<typeof openEtcdStore>[0]> = {}): Promise<EtcdStore> => {
    const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: nextPrefix(), ...options });
    stores.push(store);
    return store;
  };
  const leaseIds = async (): Promise<string[]> => (await raw.leaseClient.leaseLeases()).leases.map(({ ID }) => String(ID));

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    raw = new Etcd3({ hosts: cluster.endpoints });
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const stop of stops) await stop();
    raw?.close();
    await cluster?.stop();
  });

  test('a Txn over what etcd receives at all (3 MB) is INVALID_ARGUMENT naming --max-request-bytes, as one just over the limit is; nothing is written, its ttl lease is revoked', async () => {
    const store = await openStore();
    const leasesBefore = new Set(await leaseIds());
    for (const [count, size] of [
      [3, 1_000_000], // 3 MB: past etcd's --max-request-bytes plus 512 KiB, which gRPC refuses to read
      [2, 800_000], // 1.6 MB: past --max-request-bytes only, which etcd itself refuses
    ]) {
      const success: TxnOp[] = Array.from({ length: count }, (_, i) => ({ type: 'set', key: `b/${i}`, value: 'y'.repeat(size) }));
      success.push({ type: 'set', key: 'b/ttl', value: 1, ttlMs: 60_000 });
      const error = await rejection(store.txn({ compare: [], success, failure: [] }));
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining("etcd's --max-request-bytes") });
      expect(error.message).toContain('nothing was applied');
      expect(error.message).not.toMatch(/may or may not|\n/);
    }
    expect(await store.listKeys()).toMatchObject({ keys: [], more: false });
    expect((await leaseIds()).filter((id) => !leasesBefore.has(id))).toEqual([]);
  });

  test('requests refused for their size do not take the member out of service: a write right after five of them is served', async () => {
    const store = await openStore();
    const success: TxnOp[] = [0, 1, 2].map((i) => ({ type: 'set', key: `b/${i}`, value: 'y'.repeat(1_000_000) }));
    for (let i = 0; i < 5; i++) {
      expect(await rejection(store.txn({ compare: [], success, failure: [] }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(store.set('after', 1)).resolves.toMatchObject({ revision: expect.any(Number) });
    expect(store.failure).toBeUndefined();
  });

  test('a client of the server is told INVALID_ARGUMENT (reason INVALID_ARGUMENT) for such a Txn, not UNAVAILABLE', async () => {
    const frontend: Frontend = await startFrontend(cluster, nextPrefix());
    stops.push(() => frontend.server.kill());
    const kv = new KvClient(frontend.address, { deadlineMs: 10_000 });
    stops.push(() => kv.close());
    const big = 'y'.repeat(1_000_000);
    const error = await rejection(
      kv
        .txn()
        .then(...[0, 1, 2].map((i) => Op.set(`b/${i}`, big)))
        .commit(),
    );
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    expect(error.message).toContain("etcd's --max-request-bytes");
    expect(await kv.listKeysPage({ prefix: 'b/' })).toMatchObject({ keys: [] });
  });

  test('a Set, an Update or a Txn of one value over what etcd takes (kv told a larger --etcd-max-request-bytes than etcd has) is INVALID_ARGUMENT saying so', async () => {
    // etcd has its default 1.5 MiB; kv was told 4 MiB, so it allows values etcd will not take.
    const store = await openStore({ maxRequestBytes: 4 * 1024 * 1024, maxValueBytes: 3 * 1024 * 1024 });
    const leasesBefore = new Set(await leaseIds());
    for (const size of [1_600_000, 2_500_000]) {
      const value = 'v'.repeat(size);
      for (const call of [
        () => store.set('one', value),
        () => store.set('one', value, { ttlMs: 60_000 }),
        () => store.set('one', value, { expectedRevision: 0 }),
        () => store.update('one', { value }, { createIfMissing: true }),
        () => store.txn({ compare: [], success: [{ type: 'set', key: 'one', value }], failure: [] }),
      ]) {
        const error = await rejection(call());
        expect(error).toMatchObject({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining('--etcd-max-request-bytes must not be more than it'),
        });
      }
    }
    expect(await store.get('one')).toBeUndefined();
    expect((await leaseIds()).filter((id) => !leasesBefore.has(id))).toEqual([]);
  });

  test('through an etcd grpc-proxy (its --max-send-bytes 1.5 MiB by default), a Txn over that limit is INVALID_ARGUMENT naming it; nothing is written', async () => {
    const proxy = await startGrpcProxy(cluster, []);
    stops.push(proxy.stop);
    const store = await openStore({ endpoints: [proxy.endpoint] });
    const success: TxnOp[] = [0, 1].map((i) => ({ type: 'set', key: `p/${i}`, value: 'y'.repeat(800_000) }));
    const error = await rejection(store.txn({ compare: [], success, failure: [] }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--max-send-bytes') });
    expect(error.message).toContain('nothing was applied');
    expect(await store.listKeys()).toMatchObject({ keys: [], more: false });
  });

  test('an answer larger than can reach kv (a grpc-proxy with --max-recv-bytes 1000000) is INVALID_ARGUMENT for a read, asking for less at once', async () => {
    // The proxy wants its receive limit above its send limit.
    const proxy = await startGrpcProxy(cluster, ['--max-send-bytes=500000', '--max-recv-bytes=1000000']);
    stops.push(proxy.stop);
    const prefix = nextPrefix();
    const direct = await openStore({ prefix });
    for (const key of ['a', 'b', 'c']) await direct.set(key, 'x'.repeat(600_000));
    const store = await openStore({ prefix, endpoints: [proxy.endpoint] });
    // One at a time fits; a page of three, or a Txn getting all three, does not.
    expect((await store.list({ limit: 1 })).entries.map((e) => e.key)).toEqual(['a']);
    for (const call of [
      () => store.list({ limit: 3 }),
      () => store.txn({ compare: [], success: ['a', 'b', 'c'].map((key): TxnOp => ({ type: 'get', key })), failure: [] }),
    ]) {
      const error = await rejection(call());
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('ask for less at once') });
      expect(error.message).toContain('--max-recv-bytes');
    }
  });

  test('a Txn of 65, or 128, clears runs as on the file engine: each clear is one etcd op, and the private leases of the keys they remove are revoked', async () => {
    const store = await openStore();
    for (const count of [65, 128]) {
      for (let i = 0; i < count; i++) await store.set(`cl${i}/k`, i);
      await store.set('cl7/ttl', 1, { ttlMs: 60_000 });
      const held = (await store.get('cl7/ttl'))!.lease;
      const success: TxnOp[] = Array.from({ length: count }, (_, i) => ({ type: 'clear', prefix: `cl${i}/` }));
      const { succeeded, results } = await store.txn({ compare: [], success, failure: [] });
      expect(succeeded).toBe(true);
      expect(results.map((r) => (r.type === 'clear' ? r.deletedCount : -1))).toEqual(
        Array.from({ length: count }, (_, i) => (i === 7 ? 2 : 1)),
      );
      expect(await store.listKeys()).toMatchObject({ keys: [], more: false });
      await expect(store.leaseInfo(held)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    }
  });
});
