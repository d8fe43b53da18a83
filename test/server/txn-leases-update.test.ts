import { freePort } from '../support/free-port';
/**
 * Txn, leases and TTL, Update and List through the real server and the
 * SDK: atomicity under concurrent writers (a bank-transfer invariant),
 * leases across a stopped server and a restart, keep-alive stream loss,
 * values kept exactly (an object field named "__proto__" included), and the
 * errors of every limit.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { Compare, KvClient, KvError, Op, status } from '@kv/client';
import {
  GrantLeaseRequest,
  KeyValueServiceClient,
  SetRequest,
  TxnRequest,
  UpdateRequest,
  type KeepAliveResponse,
} from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

async function failure(promise: Promise<unknown>): Promise<KvError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('one server', () => {
  let server: RunningServer;
  let kv: KvClient;
  beforeAll(async () => {
    server = await startServer({ args: ['--max-txn-ops', '8'] });
    kv = new KvClient(server.address, { retry: { attempts: 1 } });
  });
  afterAll(async () => {
    kv.close();
    expect(await server.stop()).toBe(0);
  });

  test('bank transfers by Txn under concurrent clients never change the total, as concurrent readers see it', async () => {
    const accounts = Array.from({ length: 5 }, (_, i) => `bank/${i}`);
    const start = await kv
      .txn()
      .then(...accounts.map((a) => Op.set(a, 100)))
      .commit();
    expect(start.succeeded).toBe(true);
    const clients = Array.from({ length: 3 }, () => new KvClient(server.address));
    let transfers = 0;
    let conflicts = 0;
    const deadline = Date.now() + 3000;
    const transfer = async (client: KvClient): Promise<void> => {
      while (Date.now() < deadline) {
        const from = accounts[Math.floor(Math.random() * accounts.length)];
        const to = accounts[(accounts.indexOf(from) + 1 + Math.floor(Math.random() * 4)) % accounts.length];
        const read = await client.txn().then(Op.get(from), Op.get(to)).commit();
        const [a, b] = read.results.map((r) => (r.type === 'get' ? r.entry : undefined));
        if (a === undefined || b === undefined) throw new Error('an account vanished');
        const amount = Math.min(a.value as number, 1 + Math.floor(Math.random() * 20));
        const done = await client
          .txn()
          .if(Compare.modRevision(from, '==', a.modRevision), Compare.modRevision(to, '==', b.modRevision))
          .then(Op.set(from, (a.value as number) - amount), Op.set(to, (b.value as number) + amount))
          .commit();
        if (done.succeeded) transfers++;
        else conflicts++;
      }
    };
    const audit = async (): Promise<number> => {
      let audits = 0;
      while (Date.now() < deadline) {
        const { results } = await kv
          .txn()
          .then(...accounts.map((a) => Op.get(a)))
          .commit();
        const total = results.reduce((sum, r) => sum + (r.type === 'get' ? (r.entry?.value as number) : 0), 0);
        expect(total).toBe(500);
        audits++;
      }
      return audits;
    };
    const [audits] = await Promise.all([audit(), ...clients.map(transfer)]);
    for (const client of clients) client.close();
    expect(transfers).toBeGreaterThan(10);
    expect(audits).toBeGreaterThan(10);
    process.stdout.write(`bank: ${transfers} transfers, ${conflicts} lost races, ${audits} audits\n`);
  });

  test('values come back exactly as sent through Get, List, Watch, Txn and Update, an object field named __proto__ included', async () => {
    const value = JSON.parse('{"__proto__":{"admin":true},"constructor":"c","list":[{"__proto__":1}]}') as { [key: string]: never };
    const text = JSON.stringify(value);
    const watch = kv.watch({ key: 'proto/doc' });
    const seen: string[] = [];
    const watching = (async () => {
      for await (const event of watch) {
        seen.push(JSON.stringify(event.entry?.value));
        break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await kv.set('proto/doc', value);
    expect(JSON.stringify((await kv.get('proto/doc'))?.value)).toBe(text);
    expect(JSON.stringify((await kv.listPage({ prefix: 'proto/' })).entries[0].value)).toBe(text);
    const { results } = await kv.txn().then(Op.get('proto/doc')).commit();
    expect(JSON.stringify(results[0].type === 'get' ? results[0].entry?.value : undefined)).toBe(text);
    const updated = await kv.update('proto/doc', JSON.parse('{"__proto__":{"more":2}}') as never);
    expect(JSON.stringify(updated.value)).toBe('{"__proto__":{"admin":true,"more":2},"constructor":"c","list":[{"__proto__":1}]}');
    await watching;
    expect(seen).toEqual([text]);
  });

  test('Update merges on the server: concurrent updates of different fields all land', async () => {
    await kv.set('profile/1', { name: 'Ada', prefs: { theme: 'light' } });
    await Promise.all(Array.from({ length: 20 }, (_, i) => kv.update('profile/1', { counters: { [`c${i}`]: i } })));
    const entry = await kv.get<{ name: string; counters: Record<string, number>; prefs: { theme: string } }>('profile/1');
    expect(Object.keys(entry?.value.counters ?? {})).toHaveLength(20);
    expect(entry?.value.name).toBe('Ada');
    expect(entry?.version).toBe(21);
  });

  test('entries() pages through keys with values', async () => {
    for (let i = 0; i < 25; i++) await kv.set(`paged/${String(i).padStart(2, '0')}`, i);
    const values: unknown[] = [];
    for await (const entry of kv.entries({ prefix: 'paged/', pageSize: 7 })) values.push(entry.value);
    expect(values).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  test('a lease and its keys: info, keep-alive through the SDK handle, revoke', async () => {
    const lease = await kv.grantLease(600);
    await kv.set('lock/job', 'worker-1', { lease: lease.id });
    const handle = kv.keepAlive(lease.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await kv.get('lock/job'))?.lease).toBe(lease.id);
    expect(await kv.leaseInfo(lease.id, { keys: true })).toMatchObject({ id: lease.id, ttlMs: 600, keys: ['lock/job'] });
    handle.close();
    expect(await kv.revokeLease(lease.id)).toBe(1);
    expect(await kv.get('lock/job')).toBeUndefined();
    expect(await kv.leaseInfo(lease.id)).toBeUndefined();
  });

  test('a value nested thousands deep is refused by the SDK before encoding, as INVALID_VALUE, not an overflowed stack', async () => {
    let arrays: unknown = 1;
    for (let i = 0; i < 10_000; i++) arrays = [arrays];
    let objects: unknown = 1;
    for (let i = 0; i < 10_000; i++) objects = { a: objects };
    for (const call of [
      () => kv.set('deep', arrays as never),
      () => kv.update('deep', objects as never, { createIfMissing: true }),
      async () =>
        kv
          .txn()
          .then(Op.set('deep', arrays as never))
          .commit(),
    ]) {
      const error = await failure(call());
      expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_VALUE' });
      expect(error.message).toMatch(/nested too deeply/);
    }
    // The server's own limit is lower (31 levels of objects): 32 pass the SDK's check and the server refuses them itself.
    let levels: unknown = 1;
    for (let i = 0; i < 32; i++) levels = { a: levels };
    const refused = await failure(kv.set('deep', levels as never));
    expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_VALUE' });
    expect(refused.message).toMatch(/^request could not be decoded: value is nested too deeply/);
  });

  test('the server refuses a time to live past a year itself (the SDK checks it too), and names compares by their place', async () => {
    const client = new KeyValueServiceClient(server.address, credentials.createInsecure());
    const refusal = (send: (done: (error: { code: number; details: string } | null) => void) => void): Promise<unknown> =>
      new Promise((resolve) => send((error) => resolve(error === null ? 'OK' : { code: error.code, details: error.details })));
    try {
      const year = 365 * 86_400_000;
      expect(await refusal((done) => client.set(SetRequest.fromPartial({ key: 'k', value: 1, ttlMs: year + 1 }), done))).toEqual({
        code: status.INVALID_ARGUMENT,
        details: expect.stringContaining(`from 1 to ${year} (a year)`) as unknown,
      });
      expect(await refusal((done) => client.grantLease(GrantLeaseRequest.fromPartial({ ttlMs: year + 1 }), done))).toMatchObject({
        code: status.INVALID_ARGUMENT,
      });
      expect(
        await refusal((done) =>
          client.txn(
            {
              compare: [
                { key: 'a', result: 1, version: 0 },
                { key: 'b', result: 0, version: 0 },
              ],
              success: [],
              failure: [],
            },
            done,
          ),
        ),
      ).toEqual({ code: status.INVALID_ARGUMENT, details: 'compare 1 on key "b": result must be EQUAL, NOT_EQUAL, LESS or GREATER' });
      // An empty request is refused for its key first, as a request with a value would be.
      for (const send of [
        (done: (error: { code: number; details: string } | null) => void) => client.set(SetRequest.fromPartial({}), new Metadata(), done),
        (done: (error: { code: number; details: string } | null) => void) =>
          client.update(UpdateRequest.fromPartial({}), new Metadata(), done),
      ]) {
        expect(await refusal(send)).toEqual({ code: status.INVALID_ARGUMENT, details: 'key must be a non-empty string' });
      }
      expect(
        await refusal((done) => client.txn(TxnRequest.fromPartial({ compare: [{ key: 'v', result: 1, modRevision: -1 }] }), done)),
      ).toEqual({ code: status.INVALID_ARGUMENT, details: 'compare 0 on key "v": mod_revision must be a whole number >= 0 (got -1)' });
      // And ops by theirs, whichever check refuses them.
      expect(
        await refusal((done) => client.txn(TxnRequest.fromPartial({ success: [{ get: { key: 'a' } }, { set: { key: 'c/nov' } }] }), done)),
      ).toEqual({
        code: status.INVALID_ARGUMENT,
        details: 'success op 1 on key "c/nov": value is required for key "c/nov" (JSON null is a value)',
      });
      expect(
        await refusal((done) =>
          client.txn(TxnRequest.fromPartial({ failure: [{ update: { key: 'u' } }], compare: [{ key: 'u', result: 1, version: 9 }] }), done),
        ),
      ).toEqual({
        code: status.INVALID_ARGUMENT,
        details: 'failure op 0 on key "u": patch is required for key "u" (JSON null is a patch)',
      });
    } finally {
      client.close();
    }
  });

  test('a KeepAlive stream the client half-closes is answered, then ends with OK', async () => {
    const lease = await kv.grantLease(60_000);
    const client = new KeyValueServiceClient(server.address, credentials.createInsecure());
    try {
      const call = client.keepAlive(new Metadata());
      const answers: KeepAliveResponse[] = [];
      call.on('data', (answer: KeepAliveResponse) => answers.push(answer));
      const ended = new Promise<number>((resolve) => call.on('status', (s: { code: number }) => resolve(s.code)));
      call.on('error', () => undefined);
      call.write({ id: lease.id });
      call.end();
      expect(await ended).toBe(status.OK);
      expect(answers).toEqual([{ id: lease.id, ttlMs: 60_000 }]);
    } finally {
      client.close();
    }
  });

  test('a keep-alive handle reports the lease lost when it is revoked', async () => {
    const lease = await kv.grantLease(5000);
    const handle = kv.keepAlive(lease.id);
    await kv.revokeLease(lease.id);
    const lost = await handle.lost;
    expect(lost.reason).toBe('LEASE_NOT_FOUND');
  });

  test.each<[string, (kv: KvClient) => Promise<unknown>, status, string]>([
    [
      'a Txn over --max-txn-ops',
      (c) =>
        c
          .txn()
          .then(...Array.from({ length: 9 }, (_, i) => Op.get(`k${i}`)))
          .commit(),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    ],
    [
      'a key written twice in a Txn',
      (c) => c.txn().then(Op.set('k', 1), Op.delete('k')).commit(),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    ],
    [
      'LESS on a JSON object',
      (c) =>
        c
          .txn()
          .if(Compare.value('k', '<', {}))
          .commit(),
      status.INVALID_ARGUMENT,
      'INVALID_ARGUMENT',
    ],
    ['a lease and a ttl at once', (c) => c.set('k', 1, { lease: 1, ttlMs: 100 }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
    ['a ttl of a year and a day', (c) => c.set('k', 1, { ttlMs: 366 * 86_400_000 }), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
    ['a lease that does not exist', (c) => c.set('k', 1, { lease: 424242 }), status.NOT_FOUND, 'LEASE_NOT_FOUND'],
    ['revoking a lease that does not exist', (c) => c.revokeLease(424242), status.NOT_FOUND, 'LEASE_NOT_FOUND'],
    ['a grant of 0 ms', (c) => c.grantLease(0), status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
    ['an update of a missing key', (c) => c.update('nope', { a: 1 }), status.NOT_FOUND, 'NOT_FOUND'],
    [
      'an update past the value limit',
      async (c) => c.update('big', { x: 'y'.repeat(2 * 1024 * 1024) }, { createIfMissing: true }),
      status.INVALID_ARGUMENT,
      'TOO_LARGE',
    ],
  ])('%s is refused with the right code and reason', async (_, call, code, reason) => {
    const error = await failure(call(kv));
    expect(error).toMatchObject({ code, reason });
    expect(error.message).not.toMatch(/\n/);
  });
});

test('a Txn whose results pass 16 MiB is answered: it was committed, and the caller is told so', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address);
  try {
    const big = 'x'.repeat(1024 * 1024 - 64);
    for (let i = 0; i < 20; i++) await kv.set(`tx/${i}`, { s: big });
    const result = await kv
      .txn()
      .then(...Array.from({ length: 20 }, (_, i) => Op.update(`tx/${i}`, { n: 1 })))
      .commit();
    expect(result.succeeded).toBe(true);
    expect(result.results).toHaveLength(20);
    expect((await kv.get('tx/0'))?.value).toEqual({ s: big, n: 1 });
  } finally {
    kv.close();
    await server.stop();
  }
});

test('a key with a ttl outlives a stopped server (a restart gives leases their full time again), then expires', async () => {
  const dataDir = makeTempDir();
  let server = await startServer({ dataDir });
  let kv = new KvClient(server.address);
  await kv.set('session/1', { user: 'ada' }, { ttlMs: 1500 });
  kv.close();
  expect(await server.stop()).toBe(0);
  await new Promise((r) => setTimeout(r, 2000));
  server = await startServer({ dataDir });
  kv = new KvClient(server.address);
  try {
    expect(await kv.get('session/1')).toBeDefined();
    const gone = await pollUntil('the key to expire', async () => ((await kv.get('session/1')) === undefined ? true : undefined), 10_000);
    expect(gone).toBe(true);
  } finally {
    kv.close();
    await server.stop();
  }
});

test('keep-alive carries on across a server restart; a server that stops answering loses the lease, and the handle says so', async () => {
  const dataDir = makeTempDir();
  const address = `127.0.0.1:${await freePort()}`;
  let server = await startServer({ dataDir, args: ['--listen', address] });
  const kv = new KvClient(address);
  try {
    // Long enough for the restart: the handle gives a lease up once its time to live passes unanswered.
    const lease = await kv.grantLease(4000);
    await kv.set('held', 1, { lease: lease.id });
    const handle = kv.keepAlive(lease);
    await server.kill();
    server = await startServer({ dataDir, args: ['--listen', address] });
    // The client reconnects on its own backoff: read once it is through.
    const { entry } = await pollUntil('a read through the restarted server', () =>
      kv.get('held').then(
        (found) => ({ entry: found }),
        () => undefined,
      ),
    );
    expect(entry?.lease).toBe(lease.id);
    // A stopped server answers nothing: past the time to live the handle reports the lease lost.
    server.child.kill('SIGSTOP');
    const lost = await handle.lost;
    expect(lost.reason).toBe('UNAVAILABLE');
    server.child.kill('SIGCONT');
    await pollUntil('the lease to expire on the server', async () => ((await kv.get('held')) === undefined ? true : undefined), 10_000);
  } finally {
    server.child.kill('SIGCONT');
    kv.close();
    await server.stop();
  }
});
