/**
 * Data under kv's etcd prefix that kv could not have written — put there
 * with etcdctl or another program — is reported as CORRUPT (DATA_LOSS to
 * clients), naming the key, by every call that would have to pass it on:
 * a key attached to an etcd lease whose id is past 2^53 - 1, a value kv's
 * value rules refuse (an infinite number, a lone surrogate, a byte-order
 * mark, nesting clients cannot decode), a key kv's key rules refuse (the
 * prefix itself, over --max-key-bytes). Calls that only replace or remove
 * such a key (Set, Delete, Clear) still work: they are the way out. Data of
 * that shape that kv can represent (a lease id up to 2^53 - 1, JSON with
 * spaces) is served as is.
 */
import { Etcd3 } from 'etcd3';
import { KvClient, KvError } from '@kv/client';
import { status } from '@grpc/grpc-js';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';

const describeEtcd = describeWithEtcd();

/** An id etcd itself would grant (the tester's): past 2^53, so a JavaScript number would round it. */
const FOREIGN_LEASE = '4957234159555279242';

describeEtcd('data under the prefix that kv did not write', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  const open: EtcdStore[] = [];
  let namespaces = 0;
  const nextPrefix = (): string => `foreign-${process.pid}/${++namespaces}/`;
  const openStore = async (prefix: string): Promise<EtcdStore> => {
    const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix });
    open.push(store);
    return store;
  };
  const put = (key: string | Buffer, value: string | Buffer, lease?: string): Promise<unknown> =>
    raw.kv.put({ key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) });
  const rawGet = async (key: string): Promise<{ value: string; lease: string } | undefined> => {
    const kv = (await raw.kv.range({ key: Buffer.from(key) })).kvs[0];
    return kv === undefined ? undefined : { value: kv.value.toString(), lease: kv.lease };
  };

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    raw = new Etcd3({ hosts: cluster.endpoints });
    await raw.leaseClient.leaseGrant({ ID: FOREIGN_LEASE, TTL: 600 });
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    raw?.close();
    await cluster?.stop();
  });

  test('a key on an etcd lease past 2^53 - 1 is CORRUPT to Get, List, Update, Txn and Watch, never a rounded id; Set and Delete still work', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const { revision: before } = await store.set('el/0', 0);
    await put(`${prefix}el/1`, '{"x":1}', FOREIGN_LEASE);
    const corrupt = {
      code: 'CORRUPT',
      message: expect.stringMatching(/key "el\/1" .*etcd lease 4957234159555279242, outside the lease ids kv/),
    };

    await expect(store.get('el/1')).rejects.toMatchObject(corrupt);
    await expect(store.list({ prefix: 'el/' })).rejects.toMatchObject(corrupt);
    // Keys alone carry no lease: the key is listed, so that it can be found and dealt with.
    expect(await store.listKeys({ prefix: 'el/' })).toMatchObject({ keys: ['el/0', 'el/1'], more: false });
    await expect(store.update('el/1', { y: 2 })).rejects.toMatchObject(corrupt);
    await expect(
      store.txn({ compare: [{ key: 'el/1', target: 'version', result: 'greater', number: 0 }], success: [], failure: [] }),
    ).rejects.toMatchObject(corrupt);
    await expect(store.txn({ compare: [], success: [{ type: 'get', key: 'el/1' }], failure: [] })).rejects.toMatchObject(corrupt);
    await expect(store.watch({ prefix: 'el/', startRevision: before }).next()).rejects.toMatchObject(corrupt);
    // Nothing above wrote it, or re-attached it to a rounded lease id.
    expect(await rawGet(`${prefix}el/1`)).toEqual({ value: '{"x":1}', lease: FOREIGN_LEASE });

    // A Txn whose get meets it after its writes were applied says so, and the writes stand, their private lease too.
    const applied = (await store
      .txn({
        compare: [],
        success: [
          { type: 'set', key: 'el/ttl', value: 1, ttlMs: 60_000 },
          { type: 'get', key: 'el/1' },
        ],
        failure: [],
      })
      .catch((e: unknown) => e)) as Error;
    expect(applied).toMatchObject({ ...corrupt, message: expect.stringContaining("the transaction's writes were applied at revision") });
    const written = await store.get('el/ttl');
    expect(written).toMatchObject({ value: 1 });
    await expect(store.leaseInfo(written!.lease, { keys: true })).resolves.toMatchObject({ keys: ['el/ttl'] });

    // The ways out: a Set replaces the key (off the foreign lease), a Delete removes it; the foreign lease itself is left alone.
    await put(`${prefix}el/2`, '2', FOREIGN_LEASE);
    await store.set('el/1', { x: 2 });
    expect(await store.get('el/1')).toMatchObject({ value: { x: 2 }, lease: 0 });
    expect(await store.delete('el/2')).toMatchObject({ deleted: true });
    expect(await rawGet(`${prefix}el/2`)).toBeUndefined();
    expect(Number((await raw.leaseClient.leaseTimeToLive({ ID: FOREIGN_LEASE })).TTL)).toBeGreaterThan(0);
  });

  test('a key on an etcd lease of id 2^53 - 1 (granted by etcdctl) is served with its id exact, and an Update keeps it', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const id = Number.MAX_SAFE_INTEGER;
    await raw.leaseClient.leaseGrant({ ID: id, TTL: 600 });
    try {
      await put(`${prefix}k`, '{"x": 1}', String(id));
      expect(await store.get('k')).toMatchObject({ value: { x: 1 }, lease: id });
      expect(await store.update('k', { y: 2 })).toMatchObject({ value: { x: 1, y: 2 }, lease: id });
      expect(await rawGet(`${prefix}k`)).toEqual({ value: '{"x":1,"y":2}', lease: String(id) });
      expect(await store.leaseInfo(id, { keys: true })).toMatchObject({ id, keys: ['k'] });
    } finally {
      await raw.leaseClient.leaseRevoke({ ID: id });
    }
  });

  test('a value kv’s value rules refuse is CORRUPT naming the key, in Get, List, Update, Txn and Watch, not served or blamed on the request', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const { revision: before } = await store.set('ok', 1);
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['inf', '1e400', /Infinity is not a JSON number/],
      ['member-inf', '{"a":1e400}', /member "a": Infinity is not a JSON number/],
      ['surrogate', '"\\ud800"', /lone surrogate/],
      ['surrogate-key', '{"\\udfff":1}', /lone surrogate/],
      ['bom', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('"x"')]), /is not JSON/],
      ['deep', `${'['.repeat(60)}${']'.repeat(60)}`, /nested too deeply/],
    ];
    for (const [key, value] of cases) await put(`${prefix}${key}`, value);
    for (const [key, , why] of cases) {
      const corrupt = { code: 'CORRUPT', message: expect.stringMatching(new RegExp(`key ${JSON.stringify(key)} in etcd .*${why.source}`)) };
      await expect(store.get(key)).rejects.toMatchObject(corrupt);
      await expect(store.update(key, { b: 1 })).rejects.toMatchObject(corrupt);
      await expect(
        store.txn({ compare: [{ key, target: 'value', result: 'equal', value: 1 }], success: [], failure: [] }),
      ).rejects.toMatchObject(corrupt);
      await expect(store.list({ prefix: key })).rejects.toMatchObject(corrupt);
      await expect(store.watch({ key, startRevision: before }).next()).rejects.toMatchObject(corrupt);
      expect(await store.delete(key)).toMatchObject({ deleted: true });
    }
  });

  test('a value JSON.parse would not keep as written (an object key given twice, a number a 64-bit float rounds) is CORRUPT naming the key, never served altered or written back', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const { revision: before } = await store.set('ok', 1);
    const cases: Array<[string, string, RegExp]> = [
      ['dup', '{"a":1,"a":2}', /has the object key "a" twice/],
      ['dup-deep', '[{"x":{"b":true, "b":true}}]', /has the object key "b" twice/],
      // The same key written once plainly and once escaped; keys of different objects, and strings as values, are not keys twice.
      ['dup-escaped', '{"s":"a","o":{"a":1},"a":[{"a":0}],"\\u0061":2}', /has the object key "a" twice/],
      ['bignum', '12345678901234567890', /has the number 12345678901234567890, which would be stored as 12345678901234567000/],
      ['bignum2', '{"id": 9007199254740993}', /has the number 9007199254740993, which would be stored as 9007199254740992/],
      ['tiny', '[-1e-400]', /has the number -1e-400, which would be stored as 0/],
    ];
    for (const [key, value] of cases) await put(`${prefix}${key}`, value);
    for (const [key, value, why] of cases) {
      const corrupt = { code: 'CORRUPT', message: expect.stringMatching(new RegExp(`key ${JSON.stringify(key)} in etcd .*${why.source}`)) };
      await expect(store.get(key)).rejects.toMatchObject(corrupt);
      await expect(store.update(key, { b: 1 })).rejects.toMatchObject(corrupt);
      await expect(store.txn({ compare: [], success: [{ type: 'get', key }], failure: [] })).rejects.toMatchObject(corrupt);
      await expect(store.list({ prefix: key })).rejects.toMatchObject(corrupt);
      await expect(store.watch({ key, startRevision: before }).next()).rejects.toMatchObject(corrupt);
      // Nothing above wrote it back as JSON.parse read it.
      expect(await rawGet(`${prefix}${key}`)).toMatchObject({ value });
      expect(await store.delete(key)).toMatchObject({ deleted: true });
    }
  });

  test('values kv can represent are served, whatever wrote them: spaces, escapes, other number forms, keys JavaScript orders first', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    await put(`${prefix}spaces`, ' { "x" : [ 1 , 2 ] } ');
    await put(`${prefix}pair`, '"\\ud83d\\ude00"');
    await store.set('backslash', '\\ud800 \\\\ud800');
    await put(`${prefix}numbers`, '[1.0, 1E2, 0.1, -0, 1.5e-7, 9007199254740991]');
    await put(`${prefix}escaped`, '{"\\u0061":"\\/","b":1,"1":2}');
    // Distinct keys that differ only in escapes are not a key given twice.
    await put(`${prefix}distinct`, '{"a":1,"\\u0041":2}');
    expect(await store.get('spaces')).toMatchObject({ value: { x: [1, 2] } });
    expect(await store.get('pair')).toMatchObject({ value: '😀' });
    expect(await store.get('backslash')).toMatchObject({ value: '\\ud800 \\\\ud800' });
    expect(await store.get('numbers')).toMatchObject({ value: [1, 100, 0.1, 0, 1.5e-7, 9007199254740991] });
    expect(await store.get('escaped')).toMatchObject({ value: { a: '/', b: 1, 1: 2 } });
    expect(await store.get('distinct')).toMatchObject({ value: { a: 1, A: 2 } });
    expect((await store.list()).entries.map((e) => e.key)).toEqual(['backslash', 'distinct', 'escaped', 'numbers', 'pair', 'spaces']);
  });

  test('a key kv’s key rules refuse (the prefix itself, over --max-key-bytes) is CORRUPT to ListKeys, List and Watch, naming it; once removed, they work again', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const { revision: before } = await store.set('a', 1);
    await put(prefix, '"x"');
    const corruptEmpty = {
      code: 'CORRUPT',
      message: expect.stringContaining(`etcd key ${JSON.stringify(prefix)} under the kv prefix is not a kv key`),
    };
    await expect(store.listKeys()).rejects.toMatchObject(corruptEmpty);
    await expect(store.list()).rejects.toMatchObject(corruptEmpty);
    await expect(store.watch({ prefix: '', startRevision: before }).next()).rejects.toMatchObject(corruptEmpty);
    await raw.kv.deleteRange({ key: Buffer.from(prefix) });

    const long = `long/${'x'.repeat(4100)}`;
    await put(`${prefix}${long}`, '1');
    const corruptLong = {
      code: 'CORRUPT',
      message: expect.stringMatching(/is 4105 bytes \(UTF-8\); the limit is 4096 bytes.*larger --max-key-bytes/),
    };
    await expect(store.listKeys()).rejects.toMatchObject(corruptLong);
    await expect(store.list({ prefix: 'long/' })).rejects.toMatchObject(corruptLong);
    // A Clear of a prefix covering it removes it.
    expect(await store.clear({ prefix: 'long/' })).toMatchObject({ deletedCount: 1 });
    expect(await store.listKeys()).toMatchObject({ keys: ['a'], more: false });
  });

  test('a kv key that starts with U+FEFF keeps it in ListKeys, List and Watch (it is not a byte-order mark to drop)', async () => {
    const prefix = nextPrefix();
    const store = await openStore(prefix);
    const watch = store.watch({ prefix: '' });
    try {
      await watch.next();
      const { revision } = await store.set('\uFEFFa', 1);
      expect(await store.listKeys()).toMatchObject({ keys: ['\uFEFFa'], more: false });
      expect((await store.list()).entries.map((e) => e.key)).toEqual(['\uFEFFa']);
      for (;;) {
        const batch = await watch.next();
        if (batch.events.length === 0) continue;
        expect(batch.events.map((e) => [e.key, e.revision])).toEqual([['\uFEFFa', revision]]);
        break;
      }
    } finally {
      watch.close();
    }
  });

  describe('through a frontend', () => {
    let frontend: Frontend;
    let client: KvClient;
    const prefix = `foreign-${process.pid}/server/`;
    beforeAll(async () => {
      frontend = await startFrontend(cluster, prefix);
      client = new KvClient(frontend.address);
    });
    afterAll(async () => {
      client?.close();
      await frontend?.server.kill();
    });

    test('Get and Update of a key on a foreign etcd lease, and Get of an infinite value, of a key given twice or of a rounded number, are DATA_LOSS with reason CORRUPT, never INTERNAL or altered', async () => {
      await put(`${prefix}el/1`, '{"x":1}', FOREIGN_LEASE);
      await put(`${prefix}g/inf`, '1e400');
      await put(`${prefix}f/dup`, '{"a":1,"a":2}');
      await put(`${prefix}f/bignum`, '12345678901234567890');
      const dataLoss = { code: status.DATA_LOSS, reason: 'CORRUPT' };
      for (const call of [
        () => client.get('el/1'),
        () => client.update('el/1', { y: 2 }),
        () => client.get('g/inf'),
        () => client.get('f/dup'),
        () => client.update('f/dup', { b: 1 }),
        () => client.get('f/bignum'),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(KvError);
        expect(error).toMatchObject(dataLoss);
      }
    });
  });
});
