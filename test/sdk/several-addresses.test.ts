/** The SDK given several servers: round-robin, reads fail over, a write is sent once and never retried elsewhere. */
import { KvClient, KvError } from '@kv/client';
import { freePort } from '../support/etcd-cluster';
import { startServer, type RunningServer } from '../support/server-process';

let a: RunningServer;
let b: RunningServer;
const clients: KvClient[] = [];
const client = (addresses: string[]): KvClient => {
  const kv = new KvClient(addresses, { deadlineMs: 5000 });
  clients.push(kv);
  return kv;
};

beforeAll(async () => {
  [a, b] = await Promise.all([startServer(), startServer()]);
});
afterAll(async () => {
  for (const kv of clients) kv.close();
  await Promise.all([a.stop(), b.stop()]);
});

test('calls go to the servers in turn', async () => {
  const kv = client([a.address, b.address]);
  for (let i = 0; i < 4; i++) await kv.set(`turn/${i}`, i);
  // Two file-engine servers keep separate data, so each key shows where its write went.
  const on = async (address: string): Promise<string[]> => {
    const keys: string[] = [];
    for await (const key of client([address]).keys({ prefix: 'turn/' })) keys.push(key);
    return keys;
  };
  expect([await on(a.address), await on(b.address)]).toEqual([
    ['turn/0', 'turn/2'],
    ['turn/1', 'turn/3'],
  ]);
});

test('a read that meets a server that is down is answered by the next', async () => {
  await client([a.address]).set('read/x', 'x');
  const dead = `127.0.0.1:${await freePort()}`;
  expect((await client([dead, a.address]).get('read/x'))?.value).toBe('x');
});

test('a write to a server that is down fails once and is not retried elsewhere; later writes pass over that server', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const kv = client([dead, a.address]);
  const error = await kv.set('write/1', 1).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KvError);
  expect(error).toMatchObject({ reason: 'UNAVAILABLE' });
  expect(await client([a.address]).get('write/1')).toBeUndefined();
  // The client now knows the first server's connection failed: every write goes to the live one.
  for (let i = 2; i <= 5; i++) await kv.set(`write/${i}`, i);
  expect((await client([a.address]).get('write/5'))?.value).toBe(5);
});

test('an empty address list is refused', () => {
  expect(() => new KvClient([])).toThrow(/at least one server/);
});
