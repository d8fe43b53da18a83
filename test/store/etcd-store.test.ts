/**
 * The etcd engine: the shared store contract on a real 3-member cluster,
 * then what is etcd's own — namespaces that share a cluster but never see
 * each other's keys, revisions that are the cluster's, compaction, data
 * that kv did not write, limits checked before etcd would refuse, several
 * frontends (stores) on one namespace — and last, the cluster without its
 * quorum. (More on data kv did not write: test/etcd/foreign-data.test.ts.)
 */
import { Etcd3 } from 'etcd3';
import { loadConfig } from '../../src/config';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import type { KeyValueStore, Watch } from '../../src/store/key-value-store';
import { runStoreContract } from './store-contract';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();

test('--restore-from with --engine etcd points at the etcd restore that etcd 3.4 has (etcdctl), and at etcdutl from 3.5', () => {
  const argv = ['--engine', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379', '--restore-from', 'kv.backup'];
  expect(() => loadConfig(argv, {})).toThrow('`etcdctl snapshot restore` in etcd 3.4, `etcdutl snapshot restore` from 3.5');
});
let cluster: EtcdCluster;
let namespaces = 0;
/** A fresh, empty namespace on the shared cluster. */
const nextPrefix = (): string => `test-${process.pid}/${++namespaces}/`;

/**
 * The contract counts revisions from the store's opening, and etcd's are the
 * cluster's: a lease left by an earlier test that expired mid-test would move
 * them. So every lease on the cluster goes first.
 */
async function revokeEveryLease(): Promise<void> {
  const raw = new Etcd3({ hosts: cluster.endpoints });
  try {
    const { leases } = await raw.leaseClient.leaseLeases();
    await Promise.all(leases.map(({ ID }) => raw.leaseClient.leaseRevoke({ ID }).catch(() => undefined)));
  } finally {
    raw.close();
  }
}

describeEtcd('etcd engine', () => {
  beforeAll(async () => {
    cluster = await startEtcdCluster({ watchProgressMs: 500 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  runStoreContract(
    'etcd engine (3 members)',
    async () => {
      await revokeEveryLease();
      return openEtcdStore({ endpoints: cluster.endpoints, prefix: nextPrefix() });
    },
    undefined,
    { concurrentCallOrder: 'any', firstWatchBatch: 'at-once' },
  );
  runStoreContract(
    'etcd engine (one endpoint, small limits)',
    async () => {
      await revokeEveryLease();
      return openEtcdStore({ endpoints: [cluster.endpoints[1]], prefix: nextPrefix(), maxKeyBytes: 64, maxValueBytes: 256 });
    },
    { maxKeyBytes: 64, maxValueBytes: 256 },
    { concurrentCallOrder: 'any', firstWatchBatch: 'at-once' },
  );

  describe('what is etcd-specific', () => {
    const open: EtcdStore[] = [];
    let raw: Etcd3;
    const openStore = async (prefix = nextPrefix(), options: { callTimeoutMs?: number } = {}): Promise<EtcdStore> => {
      const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix, ...options });
      open.push(store);
      return store;
    };
    beforeAll(() => {
      raw = new Etcd3({ hosts: cluster.endpoints });
    });
    afterAll(async () => {
      await Promise.all(open.map((s) => s.close()));
      raw.close();
    });

    test('two namespaces on one cluster never see each other: get, list, clear of everything, watch', async () => {
      const a = await openStore();
      const b = await openStore();
      const watch = b.watch({ prefix: '' });
      try {
        await a.set('shared', 'from a');
        await a.set('only-a', 1);
        const { revision } = await b.set('shared', 'from b');
        expect(await a.get('shared')).toMatchObject({ value: 'from a' });
        expect(await b.listKeys()).toMatchObject({ keys: ['shared'], more: false });
        let first = await watch.next();
        while (first.events.length === 0) first = await watch.next(); // progress notices carry no events
        expect(first.events.map((e) => [e.key, e.revision])).toEqual([['shared', revision]]);
        expect(await b.clear()).toMatchObject({ deletedCount: 1 });
        expect((await a.listKeys()).keys).toEqual(['only-a', 'shared']);
      } finally {
        watch.close();
      }
    });

    test('revisions are the cluster’s: a write in another namespace moves them, so they are not dense per namespace', async () => {
      const a = await openStore();
      const b = await openStore();
      const first = await a.set('k', 1);
      await b.set('k', 1);
      const second = await a.set('k', 2);
      expect(second.revision).toBe(first.revision + 2);
      expect(await a.get('k')).toMatchObject({ createRevision: first.revision, modRevision: second.revision, version: 2 });
    });

    test('values are the JSON text kv stores, readable in etcd as is, under the prefix', async () => {
      const prefix = nextPrefix();
      const store = await openStore(prefix);
      await store.set('user/1', { name: 'Ada', langs: ['en'] });
      const stored = await raw.get(`${prefix}user/1`).string();
      expect(stored).toBe('{"name":"Ada","langs":["en"]}');
    });

    test('an idle watch gets progress batches from etcd, current to the cluster revision (moved by other namespaces)', async () => {
      const store = await openStore();
      const other = await openStore();
      const watch = store.watch({ prefix: '' });
      try {
        const { revision } = await other.set('elsewhere', 1);
        // The cluster runs with a 500 ms progress interval; nothing under this namespace changes.
        for (;;) {
          const batch = await watch.next();
          expect(batch.events).toEqual([]);
          if (batch.revision >= revision) break;
        }
      } finally {
        watch.close();
      }
    });

    test("a lease's ttl is etcd's: whole seconds, at least etcd's minimum; its id is one kv clients hold exactly", async () => {
      const store = await openStore();
      const lease = await store.grantLease(1200);
      expect(lease.ttlMs).toBe(2000);
      expect(Number.isSafeInteger(lease.id)).toBe(true);
      expect(await store.leaseInfo(lease.id)).toMatchObject({ id: lease.id, ttlMs: 2000 });
      await store.revokeLease(lease.id);
    });

    test('a lease keeps counting while no frontend is up: its key is gone when one comes back (the file engine would give it its full ttl again)', async () => {
      const prefix = nextPrefix();
      const first = await openEtcdStore({ endpoints: cluster.endpoints, prefix });
      const lease = await first.grantLease(2000);
      await first.set('k', 1, { lease: lease.id });
      await first.close();
      // No frontend now: etcd alone expires the lease.
      await pollUntil('etcd to expire the lease', async () => ((await raw.get(`${prefix}k`).string()) === null ? true : undefined), 15_000);
      const second = await openStore(prefix);
      expect(await second.get('k')).toBeUndefined();
      await expect(second.leaseInfo(lease.id)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    });

    test('a watch from a compacted revision fails with WatchCompactedError naming the oldest revision, the one after the compaction', async () => {
      const store = await openStore();
      const { revision: old } = await store.set('c', 1);
      const { revision: now } = await store.set('c', 2);
      await raw.kv.compact({ revision: now, physical: true });
      const error = await store
        .watch({ key: 'c', startRevision: old })
        .next()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'COMPACTED',
        startRevision: old,
        oldestRevision: now + 1,
        message: expect.stringContaining(`(oldest revision available: ${now + 1})`),
      });
    });

    test('a watch from exactly the compact revision is COMPACTED (etcd would drop a delete there), and one from the next revision gets it all', async () => {
      const store = await openStore();
      await store.set('d/1', 'x');
      const { revision: deleted } = await store.delete('d/1');
      await raw.kv.compact({ revision: deleted, physical: true });
      // etcd 3.4.23 accepts a watch from its compact revision and never sends the delete made at it (etcd issue 18089).
      const error = await store
        .watch({ prefix: 'd/', startRevision: deleted })
        .next()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'COMPACTED', startRevision: deleted, oldestRevision: deleted + 1 });
      const watch = store.watch({ prefix: 'd/', startRevision: deleted + 1 });
      try {
        const { revision } = await store.set('d/1', 'again');
        expect(await nextEvents(watch)).toEqual([['d/1', revision]]);
      } finally {
        watch.close();
      }
    });

    test('a watch from a revision in the future is never current to less than the one before its start (a resuming client took less for a store gone back)', async () => {
      const store = await openStore();
      const { revision } = await store.set('future/1', 'x');
      const watch = store.watch({ prefix: 'future/', startRevision: revision + 10 });
      try {
        // etcd's progress says where the member is (below the start); a client resuming here has had everything before it.
        expect(await watch.next()).toEqual({ events: [], revision: revision + 9 });
      } finally {
        watch.close();
      }
    });

    test('a watch with prev_entry from the compact revision is COMPACTED, not events without their prev entry; from the next one every prev is there', async () => {
      const store = await openStore();
      const { revision: one } = await store.set('c/1', 'one');
      await store.set('c/1', 'two');
      const { revision: three } = await store.set('c/1', 'three');
      await raw.kv.compact({ revision: three, physical: true });
      // etcd sends the put at its compact revision without prev_kv (it no longer has the revision before), which read as "new key".
      const error = await store
        .watch({ prefix: 'c/', startRevision: three, prevEntry: true })
        .next()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'COMPACTED', oldestRevision: three + 1 });
      const watch = store.watch({ prefix: 'c/', startRevision: three + 1, prevEntry: true });
      try {
        const { revision: four } = await store.set('c/1', 'four');
        let batch = await watch.next();
        while (batch.events.length === 0) batch = await watch.next();
        expect(batch.events).toEqual([
          expect.objectContaining({
            type: 'put',
            key: 'c/1',
            revision: four,
            prev: expect.objectContaining({ valueJson: '"three"', modRevision: three, createRevision: one, version: 3 }),
          }),
        ]);
      } finally {
        watch.close();
      }
    });

    test('a key or value under the prefix that kv did not write is reported, not skipped or guessed', async () => {
      const prefix = nextPrefix();
      const store = await openStore(prefix);
      await raw.put(`${prefix}not-json`).value('{oops');
      await raw.put(Buffer.concat([Buffer.from(prefix), Buffer.from([0xc3, 0x28])])).value('1');
      await expect(store.get('not-json')).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining('not JSON') });
      await expect(store.listKeys()).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining('not UTF-8') });
    });

    test('kv limits that etcd would refuse are refused at open, with both limits named', async () => {
      await expect(openEtcdStore({ endpoints: cluster.endpoints, prefix: nextPrefix(), maxValueBytes: 2 * 1048576 })).rejects.toThrow(
        /over etcd's request limit of 1572864 bytes: lower --max-value-bytes, or raise etcd's --max-request-bytes/,
      );
    });

    test("a Backup or List of more than two chunks stays at its first chunk's revision while writes go on (etcd's header gives its revision now)", async () => {
      const store = await openStore(nextPrefix());
      // 2500 keys: three chunks of 1000. "a/moved" and "z/moved" trade places in one Txn, over and over: one of
      // them, exactly, exists at any revision; the first lies in the first chunk, the second in the last.
      for (let i = 0; i < 2500; i += 250) {
        await Promise.all(Array.from({ length: 250 }, (_, j) => store.set(`m/${String(i + j).padStart(5, '0')}`, i + j)));
      }
      await store.set('a/moved', 0);
      let moving = true;
      const mover = (async () => {
        for (let n = 1; moving; n++) {
          const [from, to] = n % 2 === 1 ? ['a/moved', 'z/moved'] : ['z/moved', 'a/moved'];
          await store.txn({
            compare: [],
            success: [
              { type: 'delete', key: from },
              { type: 'set', key: to, value: n },
            ],
            failure: [],
          });
        }
      })();
      try {
        for (let round = 0; round < 6; round++) {
          const snapshot = await store.snapshot();
          const keys = [...snapshot.entries()];
          const moved = keys.filter(([key]) => key.endsWith('/moved')).map(([key]) => key);
          expect({ round, moved: moved.length }).toEqual({ round, moved: 1 });
          expect(Math.max(...keys.map(([, entry]) => entry.modRevision))).toBeLessThanOrEqual(snapshot.revision);
          const listed = await store.list({ limit: 3000 });
          expect({ round, listed: listed.entries.filter((e) => e.key.endsWith('/moved')).length }).toEqual({ round, listed: 1 });
          expect(Math.max(...listed.entries.map((e) => e.modRevision))).toBeLessThanOrEqual(listed.revision);
        }
      } finally {
        moving = false;
        await mover;
      }
    }, 60_000);

    test('ListLeases is NOT_SUPPORTED, naming what to use instead (etcdctl lease list)', async () => {
      const store = await openStore(nextPrefix());
      await expect(store.listLeases()).rejects.toMatchObject({
        code: 'NOT_SUPPORTED',
        message: expect.stringContaining('etcdctl lease list'),
      });
    });

    test("a snapshot (Backup) is the prefix's keys at one revision, with the leases they hold; a revoked lease's keys are not in a later one", async () => {
      const store = await openStore(nextPrefix());
      const other = await openStore(nextPrefix());
      await other.set('elsewhere', 1);
      const shared = await store.grantLease(60_000);
      await store.set('a', { n: 1 });
      await store.set('b', 'two', { lease: shared.id });
      await store.set('c', [3], { ttlMs: 60_000 });
      const doomed = await store.grantLease(60_000);
      await store.set('d', 4, { lease: doomed.id });
      await store.grantLease(60_000); // holds no key: not this prefix's to back up
      const before = await store.snapshot();
      expect(before.keyCount).toBe(4);
      const entries = [...before.entries()];
      expect(entries.map(([key, entry]) => [key, JSON.parse(entry.valueJson), entry.lease])).toEqual([
        ['a', { n: 1 }, 0],
        ['b', 'two', shared.id],
        ['c', [3], entries[2][1].lease],
        ['d', 4, doomed.id],
      ]);
      expect(entries.every(([, entry]) => entry.modRevision <= before.revision && entry.version === 1)).toBe(true);
      expect(before.leases).toEqual(
        [
          { id: shared.id, ttlMs: 60_000 },
          { id: entries[2][1].lease, ttlMs: 60_000, private: true },
          { id: doomed.id, ttlMs: 60_000 },
        ].sort((x, y) => x.id - y.id),
      );
      before.release();
      // A revoked lease's keys go with it: a later snapshot has neither.
      await store.revokeLease(doomed.id);
      const after = await store.snapshot();
      expect([...after.entries()].map(([key]) => key)).toEqual(['a', 'b', 'c']);
      expect(after.leases.map((lease) => lease.id)).not.toContain(doomed.id);
      expect(after.revision).toBeGreaterThan(before.revision);
    });

    test('a cluster nobody answers at is unavailable, not a hang: open fails within its call timeout', async () => {
      const started = Date.now();
      await expect(openEtcdStore({ endpoints: ['http://127.0.0.1:1'], prefix: nextPrefix(), callTimeoutMs: 1000 })).rejects.toMatchObject({
        code: 'NOT_SENT', // nothing listens there: nothing was sent
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    test('a watch from now through one frontend starts after the writes made through another, replaying none of them', async () => {
      const prefix = nextPrefix();
      const a = await openStore(prefix);
      const b = await openStore(prefix);
      let last = 0;
      for (let i = 0; i < 5; i++) ({ revision: last } = await a.set(`w/${i}`, i));
      const watch = b.watch({ prefix: 'w/' });
      try {
        const first = await watch.next();
        expect(first.events).toEqual([]);
        expect(first.revision).toBeGreaterThanOrEqual(last);
        const { revision } = await a.set('w/new', 1);
        expect(await nextEvents(watch)).toEqual([['w/new', revision]]);
      } finally {
        watch.close();
      }
    });

    test('a watch from now through a frontend that saw nothing since a compaction starts at etcd’s revision, not COMPACTED', async () => {
      const prefix = nextPrefix();
      const behind = await openStore(prefix);
      const writer = await openStore(prefix);
      let now = 0;
      for (let i = 0; i < 3; i++) ({ revision: now } = await writer.set('c', i));
      await raw.kv.compact({ revision: now, physical: true });
      const watch = behind.watch({ prefix: '' });
      try {
        const first = await watch.next();
        expect(first.events).toEqual([]);
        expect(first.revision).toBeGreaterThanOrEqual(now);
        const { revision } = await writer.set('c', 'after');
        expect(await nextEvents(watch)).toEqual([['c', revision]]);
      } finally {
        watch.close();
      }
    });

    test('updates of different fields of one key made at once through two frontends all land', async () => {
      const prefix = nextPrefix();
      const a = await openStore(prefix);
      const b = await openStore(prefix);
      await a.set('doc', {});
      const n = 40;
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? a : b).update('doc', { [`f${i}`]: i })));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(await a.get('doc')).toMatchObject({
        value: Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, i])),
        version: n + 1,
      });
    });

    test('200 concurrent updates of different fields of one key through one frontend all land (they queue, not conflict)', async () => {
      // They run one after another, two etcd round trips each: on a loaded machine the last waits longer than the default 5 s.
      const store = await openStore(nextPrefix(), { callTimeoutMs: 60_000 });
      await store.set('obj2', {});
      const n = 200;
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => store.update('obj2', { [`f${i}`]: i })));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(await store.get('obj2')).toMatchObject({
        value: Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, i])),
        version: n + 1,
      });
    }, 120_000);

    test('a private lease (ttl) goes with its key: 50 ttl sets leave one lease; set, delete, clear and Txn ops revoke it; no other key may use it', async () => {
      const store = await openStore();
      const leases = async (): Promise<string[]> => (await raw.leaseClient.leaseLeases()).leases.map(({ ID }) => String(ID));
      const before = new Set(await leases());
      const gone = async (id: number): Promise<boolean> =>
        store.leaseInfo(id).then(
          () => false,
          (error: { code?: string }) => error.code === 'LEASE_NOT_FOUND',
        );
      const ids: number[] = [];
      for (let i = 0; i < 50; i++) {
        await store.set('session', { i }, { ttlMs: 60_000 });
        ids.push((await store.get('session'))!.lease);
      }
      expect(new Set(ids).size).toBe(50);
      for (const id of ids.slice(0, -1)) expect(await gone(id)).toBe(true);
      const last = ids[49];
      // LeaseLeases is answered from what the member asked has applied.
      await pollUntil('one new lease on the cluster', async () => {
        const now = (await leases()).filter((id) => !before.has(id));
        return now.length === 1 && now[0] === String(last) ? true : undefined;
      });
      // Another key cannot be attached to it, by a set (with or without a compare) or a Txn; its own key can.
      await expect(store.set('thief', 1, { lease: last })).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
      await expect(store.set('thief', 1, { lease: last, expectedRevision: 0 })).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
      await expect(
        store.txn({ compare: [], success: [{ type: 'set', key: 'thief', value: 1, lease: last }], failure: [] }),
      ).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
      expect(await store.get('thief')).toBeUndefined();
      await store.set('session', 'kept', { lease: last });
      expect(await gone(last)).toBe(false);
      // A set without ttl.
      await store.set('session', 'plain');
      expect(await gone(last)).toBe(true);
      const ttlLease = async (key: string): Promise<number> => {
        await store.set(key, 1, { ttlMs: 60_000 });
        return (await store.get(key))!.lease;
      };
      let id = await ttlLease('d');
      expect(await store.delete('d')).toMatchObject({ deleted: true });
      expect(await gone(id)).toBe(true);
      id = await ttlLease('d');
      await store.delete('d', { expectedRevision: (await store.get('d'))!.modRevision });
      expect(await gone(id)).toBe(true);
      const cleared = [await ttlLease('c/1'), await ttlLease('c/2')];
      expect(await store.clear({ prefix: 'c/' })).toMatchObject({ deletedCount: 2 });
      for (const c of cleared) expect(await gone(c)).toBe(true);
      const [t1, t2] = [await ttlLease('t/1'), await ttlLease('t/2')];
      await store.txn({
        compare: [],
        success: [
          { type: 'set', key: 't/1', value: 2 },
          { type: 'delete', key: 't/2' },
        ],
        failure: [],
      });
      expect(await gone(t1)).toBe(true);
      expect(await gone(t2)).toBe(true);
      await pollUntil('no new lease left on the cluster', async () => ((await leases()).every((l) => before.has(l)) ? true : undefined));
    });

    test('a Clear in a Txn of large values removes them all, the ops after it answer in order, and its keys’ private leases are revoked', async () => {
      const store = await openStore();
      // 4.5 MB of values (the clear now reads only their keys and leases, not the values).
      const big = 'x'.repeat(900_000);
      for (let i = 0; i < 5; i++) await store.set(`big/${i}`, big);
      await store.set('big/ttl', 1, { ttlMs: 60_000 });
      const lease = (await store.get('big/ttl'))!.lease;
      const { results } = await store.txn({
        compare: [],
        success: [
          { type: 'get', key: 'other' },
          { type: 'clear', prefix: 'big/' },
          { type: 'get', key: 'big/0' },
        ],
        failure: [],
      });
      expect(results).toEqual([
        { type: 'get', entry: undefined },
        { type: 'clear', deletedCount: 6, revision: expect.any(Number) },
        { type: 'get', entry: undefined },
      ]);
      await expect(store.leaseInfo(lease)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    });

    test('a lease of another app that has a private lease’s id (etcd’s ids carry the member id in bits 48-63) is not revoked while any key holds it', async () => {
      const prefix = nextPrefix();
      const store = await openStore(prefix);
      // As etcd grants one on a member whose id ends in 0x0001: 2^48 + a random 48-bit counter.
      const ID = 2 ** 48 + 0x1234_5678;
      await raw.leaseClient.leaseGrant({ ID, TTL: 60 });
      try {
        const other = `other-app-${process.pid}/x`;
        await raw.kv.put({ key: Buffer.from(other), value: Buffer.from('theirs'), lease: ID });
        await raw.kv.put({ key: Buffer.from(`${prefix}a`), value: Buffer.from('1'), lease: ID });
        await raw.kv.put({ key: Buffer.from(`${prefix}b`), value: Buffer.from('2'), lease: ID });
        // Each takes a kv key off that lease: another key (in the prefix or not) still holds it.
        expect(await store.delete('a')).toMatchObject({ deleted: true });
        await store.txn({ compare: [], success: [{ type: 'clear', prefix: 'b' }], failure: [] });
        expect((await raw.kv.range({ key: Buffer.from(other) })).kvs.map((kv) => kv.value.toString())).toEqual(['theirs']);
        expect(Number((await raw.leaseClient.leaseTimeToLive({ ID, keys: true })).TTL)).toBeGreaterThan(0);
        // Once no key holds it, taking the last kv key off it revokes it as before.
        await raw.kv.deleteRange({ key: Buffer.from(other) });
        await raw.kv.put({ key: Buffer.from(`${prefix}c`), value: Buffer.from('3'), lease: ID });
        await store.set('c', 4);
        expect(Number((await raw.leaseClient.leaseTimeToLive({ ID })).TTL)).toBe(-1);
      } finally {
        await raw.leaseClient.leaseRevoke({ ID }).catch(() => undefined);
      }
    });

    test('a Txn over etcd’s --max-txn-ops is refused naming that limit; one over --max-request-bytes names that one', async () => {
      const store = await openStore();
      const compare = Array.from({ length: 100 }, (_, i) => ({
        key: `c${i}`,
        target: 'version' as const,
        result: 'equal' as const,
        number: 0,
      }));
      const updates = Array.from({ length: 60 }, (_, i) => ({
        type: 'update' as const,
        key: `u${i}`,
        patch: { a: 1 },
        createIfMissing: true,
      }));
      const tooMany = (await store.txn({ compare, success: updates, failure: [] }).catch((e: unknown) => e)) as Error;
      expect(tooMany).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining("etcd's --max-txn-ops") });
      expect(tooMany.message).not.toContain('--max-request-bytes');
      // etcd refuses kv's read of the 160 keys before it writes: the caller sent a transaction, not a read.
      expect(tooMany.message).toMatch(
        /^the transaction compares or updates 160 keys, more than etcd's --max-txn-ops \(128 by default\) allows; nothing was applied/,
      );
      expect(tooMany.message).not.toContain('refused the read');
      // Two values of 0.85 MB each: each within kv's limit, together over etcd's 1.5 MiB.
      const big = 'x'.repeat(850_000);
      const sets = ['b1', 'b2'].map((key) => ({ type: 'set' as const, key, value: big }));
      const tooLarge = (await store.txn({ compare: [], success: sets, failure: [] }).catch((e: unknown) => e)) as Error;
      expect(tooLarge).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining("etcd's --max-request-bytes") });
      expect(tooLarge.message).not.toContain('--max-txn-ops');
    });

    test('a Set or Txn with ttl_ms that certainly wrote nothing leaves no lease behind', async () => {
      const store = await openStore();
      const leases = async (): Promise<string[]> => (await raw.leaseClient.leaseLeases()).leases.map(({ ID }) => String(ID));
      const before = new Set(await leases());
      await expect(store.set('x', 1, { expectedRevision: 12345, ttlMs: 60_000 })).rejects.toMatchObject({ code: 'REVISION_MISMATCH' });
      await expect(
        store.txn({
          compare: [],
          success: [
            { type: 'set', key: 'y', value: 1, ttlMs: 60_000 },
            { type: 'update', key: 'missing', patch: { a: 1 } },
          ],
          failure: [],
        }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      // LeaseLeases is answered by whichever member the client asks, from what that member has applied: not linearizable.
      const newLeases = async (): Promise<string[]> => (await leases()).filter((id) => !before.has(id));
      await pollUntil('the revoked leases to be gone on the member asked', async () =>
        (await newLeases()).length === 0 ? true : undefined,
      );
      // A Txn that took the other branch leaves none either; the one it wrote holds its key.
      const { results } = await store.txn({
        compare: [{ key: 'x', target: 'version', result: 'greater', number: 0 }],
        success: [{ type: 'set', key: 's', value: 1, ttlMs: 60_000 }],
        failure: [{ type: 'set', key: 'f', value: 1, ttlMs: 60_000 }],
      });
      expect(results).toEqual([{ type: 'set', revision: expect.any(Number) }]);
      const kept = String((await store.get('f'))?.lease);
      const added = await pollUntil('only the lease of the write that happened to be left', async () => {
        const now = await newLeases();
        return now.length === 1 && now[0] === kept ? now : undefined;
      });
      await store.revokeLease(Number(added[0]));
    });
  });

  /** Last: it takes the cluster's quorum away. */
  describe('with a majority of the members down', () => {
    const open: EtcdStore[] = [];
    const survivor = 0;
    /** Opened before the quorum goes (opening reads from etcd). */
    let keepAliveStore: EtcdStore;
    let leaseId: number;
    let writeStore: EtcdStore;
    /** As the server sees it: the interface's `failure`, what health reports. */
    let healthStore: KeyValueStore;
    let queueStore: EtcdStore;
    /** On a member that will be down: its writes are refused before they leave. */
    let refusedStore: EtcdStore;
    let readStore: EtcdStore;
    const openStore = async (options: Partial<Parameters<typeof openEtcdStore>[0]>): Promise<EtcdStore> => {
      const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: nextPrefix(), ...options });
      open.push(store);
      return store;
    };
    beforeAll(async () => {
      keepAliveStore = await openStore({ callTimeoutMs: 2000 });
      leaseId = (await keepAliveStore.grantLease(60_000)).id;
      // Longer than etcd's own request timeout (5 s + 2 election timeouts): etcd answers first, and how is what is tested.
      writeStore = await openStore({ endpoints: [cluster.endpoints[survivor]], callTimeoutMs: 9000 });
      healthStore = await openStore({ callTimeoutMs: 1000 });
      // The survivor only: every call waits out its deadline (the dead members would refuse at once).
      queueStore = await openStore({ endpoints: [cluster.endpoints[survivor]], callTimeoutMs: 1000 });
      refusedStore = await openStore({ endpoints: [cluster.endpoints[1]], callTimeoutMs: 1000 });
      readStore = await openStore({ callTimeoutMs: 1000 });
      expect(healthStore.failure).toBeUndefined();
      await cluster.kill(1);
      await cluster.kill(2);
      // The survivor steps down (or sees its leader gone) within an election timeout.
      await pollUntil('the surviving member to have no leader', async () =>
        (await leaderOf(cluster.endpoints[survivor])) ? undefined : true,
      );
    }, 30_000);
    afterAll(async () => {
      await Promise.all(open.map((s) => s.close()));
    });

    test('KeepAlive is UNAVAILABLE (to a client) within the call timeout', async () => {
      const started = Date.now();
      const error = (await keepAliveStore.keepAliveLease(leaseId).catch((e: unknown) => e)) as { code?: string; message?: string };
      // UNAVAILABLE once a try reached the survivor (it has no leader); NOT_SENT if, on a loaded machine, every try in
      // the 2 s went to a dead member. A client gets UNAVAILABLE either way.
      expect(['UNAVAILABLE', 'NOT_SENT']).toContain(error.code);
      expect(error.message).toContain('keep-alive');
      expect(Date.now() - started).toBeLessThan(6000);
    });

    test('a write that etcd ends with its own deadline (UNKNOWN "context deadline exceeded") is UNAVAILABLE, outcome unknown', async () => {
      await expect(writeStore.set('k', 1)).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringContaining('the write may or may not have been applied'),
      });
    });

    test('writes that never left the frontend (no connection to the member, then its circuit open) are NOT_SENT (UNAVAILABLE to a client) saying nothing was applied', async () => {
      const errors: Error[] = [];
      for (let i = 0; i < 6; i++) errors.push((await refusedStore.set(`k${i}`, i).catch((e: unknown) => e)) as Error);
      for (const error of errors) {
        // Reason NOT_SENT (UNAVAILABLE to a client): nothing was applied, so a client may try the write again.
        expect(error).toMatchObject({
          code: 'NOT_SENT',
          message: expect.stringContaining('nothing was sent to etcd, nothing was applied'),
        });
        expect(error.message).not.toContain('may or may not');
      }
      expect(errors.filter((e) => e.message.includes('No connection established')).length).toBeGreaterThan(0);
      expect(errors.filter((e) => e.message.includes('each failed recently')).length).toBeGreaterThan(0);
    });

    test('a Txn of only compares and gets is a read, not a write of unknown outcome; an Update whose first read fails applied nothing', async () => {
      const reads = [
        {
          compare: [{ key: 'r', target: 'version' as const, result: 'equal' as const, number: 0 }],
          success: [{ type: 'get' as const, key: 'r' }],
          failure: [],
        },
        { compare: [], success: [{ type: 'get' as const, key: 'r' }], failure: [] },
      ];
      for (const txn of reads) {
        const error = (await readStore.txn(txn).catch((e: unknown) => e)) as Error;
        expect(error).toMatchObject({
          code: expect.stringMatching(/^(UNAVAILABLE|NOT_SENT)$/),
          message: expect.stringContaining('the read'),
        });
        expect(error.message).not.toContain('may or may not');
      }
      const update = (await readStore.update('r', { a: 1 }, { createIfMissing: true }).catch((e: unknown) => e)) as Error;
      expect(update).toMatchObject({ code: 'NOT_SENT', message: expect.stringContaining('nothing was applied') });
      expect(update.message).not.toContain('may or may not');
    });

    test('Updates queued on one key share the call timeout from when they were made: five fail together within it, none sent as a write', async () => {
      const started = Date.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => queueStore.update('hot', { [`f${i}`]: i }, { createIfMissing: true })),
      );
      const elapsed = Date.now() - started;
      const errors = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: string; message?: string }) : undefined));
      // The first one's read of the key fails (each try at its own deadline, a quarter of the 1 s); the others waited
      // behind it and are never sent to etcd, by the queue at their deadline, or (once the first one's tries opened the
      // member's circuit) by etcd3; one let in just before its deadline fails its read. None is a write of unknown outcome.
      for (const error of errors) {
        expect(error).toMatchObject({ code: 'NOT_SENT', message: expect.stringContaining('nothing was applied') });
        expect(error?.message).not.toContain('may or may not');
      }
      // One timeout (1 s), not five in a row.
      expect(elapsed).toBeLessThan(2500);
    });

    test('failure (what health reports) is set while etcd has no quorum, and clears once it has one again', async () => {
      await pollUntil('the store to report etcd unavailable', () => healthStore.failure, 8000);
      expect(healthStore.failure).toMatchObject({
        code: expect.stringMatching(/^(UNAVAILABLE|NOT_SENT)$/),
        // What health's log line says: what to look at, not one member's connection error alone.
        message: expect.stringContaining('a majority of them is up (without a majority etcd has no leader, and answers nothing)'),
      });
      await Promise.all([cluster.restart(1), cluster.restart(2)]);
      await pollUntil('the store to report etcd available again', () => (healthStore.failure === undefined ? true : undefined), 8000);
    });
  });
});

/** The events of the next batch that has any, as [key, revision] (etcd's progress notices carry none). */
async function nextEvents(watch: Watch): Promise<Array<[string, number]>> {
  for (;;) {
    const batch = await watch.next();
    if (batch.events.length > 0) return batch.events.map((e) => [e.key, e.revision]);
  }
}

/** The leader a member names (undefined: none), from its own status endpoint. */
async function leaderOf(endpoint: string): Promise<string | undefined> {
  const res = await fetch(`${endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
  const { leader } = (await res.json()) as { leader?: string };
  return leader === undefined || leader === '0' ? undefined : leader;
}
