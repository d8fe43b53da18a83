/** A closed KvClient: every call afterwards fails as a KvError CANCELLED "the client is closed", asynchronously where the API is. */
import path from 'node:path';
import { KvClient, KvError, Op, status } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

const CLOSED = { code: status.CANCELLED, reason: 'CANCELLED', message: expect.stringMatching(/^the client is closed/) };

test('every call on a closed client rejects with a KvError CANCELLED, none throws synchronously', async () => {
  const kv = new KvClient(server.address);
  await kv.set('k', 1); // connected and used before it is closed
  const lease = await kv.grantLease(60_000);
  kv.close();
  kv.close(); // a second close is harmless

  const backupFile = path.join(makeTempDir('kv-closed-'), 'b.kvbackup');
  const calls: [string, () => Promise<unknown>][] = [
    ['get', () => kv.get('k')],
    ['set', () => kv.set('k', 2)],
    ['update', () => kv.update('k', { a: 1 })],
    ['delete', () => kv.delete('k')],
    ['clear', () => kv.clear()],
    ['listKeysPage', () => kv.listKeysPage({})],
    ['listPage', () => kv.listPage({})],
    ['keys', () => kv.keys().next()],
    ['entries', () => kv.entries().next()],
    ['grantLease', () => kv.grantLease(1000)],
    ['revokeLease', () => kv.revokeLease(lease.id)],
    ['leaseInfo', () => kv.leaseInfo(lease.id)],
    ['health', () => kv.health()],
    ['txn', () => kv.txn().then(Op.get('k')).commit()],
    ['backup', () => kv.backup(backupFile)],
    ['watch', () => kv.watch({ prefix: '' })[Symbol.asyncIterator]().next()],
  ];
  for (const [name, call] of calls) {
    let outcome: unknown;
    try {
      outcome = await call().then(
        () => 'resolved',
        (error: unknown) => error,
      );
    } catch (error) {
      outcome = { thrownSynchronously: error };
    }
    const { code, reason, message } = outcome as KvError;
    expect({ call: name, isKvError: outcome instanceof KvError, code, reason, message }).toEqual({
      call: name,
      isKvError: true,
      ...CLOSED,
    });
  }
});

test('keepAlive on a closed client gives a handle whose lost resolves at once with the same error', async () => {
  const kv = new KvClient(server.address);
  const lease = await kv.grantLease(60_000);
  kv.close();
  const handle = kv.keepAlive(lease);
  expect(handle.id).toBe(lease.id);
  await expect(handle.lost).resolves.toMatchObject(CLOSED);
  handle.close();
});

test('a keepAlive handle open when the client closes has its lost resolve with the same error: nothing refreshes the lease now', async () => {
  const kv = new KvClient(server.address);
  const lease = await kv.grantLease(60_000);
  const handle = kv.keepAlive(lease);
  const again = kv.keepAlive(lease); // a second handle of the same lease is told too
  kv.close();
  await expect(handle.lost).resolves.toMatchObject(CLOSED);
  await expect(again.lost).resolves.toMatchObject(CLOSED);
  handle.close();
  again.close();
});

test('a watch being iterated when the client closes ends quietly, as breaking out does', async () => {
  const kv = new KvClient(server.address);
  const seen: string[] = [];
  const watching = (async () => {
    for await (const event of kv.watch({ prefix: 'closing/' })) {
      seen.push(event.key);
      kv.close();
    }
  })();
  const writer = new KvClient(server.address);
  await writer.set('closing/a', 1);
  writer.close();
  await expect(watching).resolves.toBeUndefined();
  expect(seen).toEqual(['closing/a']);
});
