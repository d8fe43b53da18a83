/**
 * Private leases (a set with ttlMs) on the file engine: each lives only as
 * long as its key uses it. Overwriting, deleting or clearing the key revokes
 * it in the same revision, so refreshing a key with ttlMs does not pile up
 * leases; no other key can be attached to it; and all of it is in the log,
 * so a restart (clean, or SIGKILL and recovery) gives the same leases.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KvClient, KvError, status } from '@kv/client';
import { openFileStore } from '../../src/store/file';
import { FORMAT_VERSION } from '../../src/store/file/record-codec';
import type { KeyValueStore } from '../../src/store/key-value-store';
import { startServer } from '../support/server-process';
import { makeTempDir, tempDataDirs } from '../support/temp-dirs';
import { rewriteLogVersion } from './file-store-support';
import { collectUntil } from './store-contract';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

/** Whether the lease is still there (LeaseInfo answers), on any engine. */
async function leaseLives(store: KeyValueStore, id: number): Promise<boolean> {
  try {
    await store.leaseInfo(id);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'LEASE_NOT_FOUND') return false;
    throw error;
  }
}

test('50 sets of one key with ttlMs leave one live lease, also after a restart', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  const leases: number[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      await store.set('session/1', { i }, { ttlMs: 60_000 });
      leases.push((await store.get('session/1'))!.lease);
    }
    expect(new Set(leases).size).toBe(50);
    expect(store.stats().leases).toBe(1);
    for (const id of leases.slice(0, -1)) expect(await leaseLives(store, id)).toBe(false);
    expect(await store.leaseInfo(leases[49], { keys: true })).toMatchObject({ ttlMs: 60_000, keys: ['session/1'] });
    const view = await store.snapshot();
    expect(view.leases).toEqual([{ id: leases[49], ttlMs: 60_000, private: true }]);
    view.release();
  } finally {
    await store.close();
  }
  store = await openFileStore({ dataDir });
  try {
    expect(store.stats().leases).toBe(1);
    expect(await leaseLives(store, leases[0])).toBe(false);
    expect((await store.get('session/1'))?.lease).toBe(leases[49]);
    // Still private after the restart: the log says so.
    await expect(store.set('other', 1, { lease: leases[49] })).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
    await store.set('session/1', 'plain');
    expect(store.stats().leases).toBe(0);
  } finally {
    await store.close();
  }
});

test("overwriting, deleting or clearing a key revokes its private lease at the change's revision; an update keeps it", async () => {
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never' });
  try {
    const shared = await store.grantLease(60_000);
    const ttlLease = async (key: string): Promise<number> => {
      await store.set(key, 1, { ttlMs: 60_000 });
      return (await store.get(key))!.lease;
    };
    // Without ttl: the key becomes permanent and its lease goes.
    let id = await ttlLease('a');
    await store.set('a', 2);
    expect(await leaseLives(store, id)).toBe(false);
    // Onto a shared lease.
    id = await ttlLease('a');
    await store.set('a', 3, { lease: shared.id });
    expect(await leaseLives(store, id)).toBe(false);
    expect(await store.leaseInfo(shared.id, { keys: true })).toMatchObject({ keys: ['a'] });
    // An update keeps the key's lease.
    id = await ttlLease('b');
    await store.update('b', { more: true });
    expect((await store.get('b'))?.lease).toBe(id);
    expect(await leaseLives(store, id)).toBe(true);
    // A delete.
    await store.delete('b');
    expect(await leaseLives(store, id)).toBe(false);
    // A clear, of several keys with private leases.
    const ids = [await ttlLease('c/1'), await ttlLease('c/2')];
    expect((await store.clear({ prefix: 'c/' })).deletedCount).toBe(2);
    for (const i of ids) expect(await leaseLives(store, i)).toBe(false);
    // Transactions: a set and a delete in one.
    const [d1, d2] = [await ttlLease('d/1'), await ttlLease('d/2')];
    await store.txn({
      compare: [],
      success: [
        { type: 'set', key: 'd/1', value: 'x', ttlMs: 30_000 },
        { type: 'delete', key: 'd/2' },
      ],
      failure: [],
    });
    expect(await leaseLives(store, d1)).toBe(false);
    expect(await leaseLives(store, d2)).toBe(false);
    expect(await store.leaseInfo((await store.get('d/1'))!.lease)).toMatchObject({ ttlMs: 30_000 });
    // Only the shared lease and d/1's new one are left.
    expect(store.stats().leases).toBe(2);
    // A revocation is no change to keys: watchers saw only the sets and deletes, one revision each.
    const watch = store.watch({ prefix: 'a', startRevision: 1 });
    const { events } = await collectUntil(watch, store.revision);
    watch.close();
    expect(events.map(([type, key, revision]) => `${type} ${key} ${revision}`)).toEqual(['put a 1', 'put a 2', 'put a 3', 'put a 4']);
  } finally {
    await store.close();
  }
});

test('a private lease cannot be attached to another key, by a set or a transaction; its own key may name it', async () => {
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never' });
  try {
    await store.set('owner', 1, { ttlMs: 60_000 });
    const id = (await store.get('owner'))!.lease;
    await expect(store.set('thief', 1, { lease: id })).rejects.toMatchObject({
      code: 'LEASE_PRIVATE',
      message: expect.stringContaining(`lease ${id} is the private lease of another key`) as unknown,
    });
    await expect(
      store.txn({ compare: [], success: [{ type: 'set', key: 'thief', value: 1, lease: id }], failure: [] }),
    ).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
    expect(await store.get('thief')).toBeUndefined();
    // A transaction that moves the key off it first revokes it; it is still another key's lease (as on the etcd engine).
    await expect(
      store.txn({
        compare: [],
        success: [
          { type: 'delete', key: 'owner' },
          { type: 'set', key: 'thief', value: 1, lease: id },
        ],
        failure: [],
      }),
    ).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
    expect((await store.get('owner'))?.lease).toBe(id);
    // The key itself may be set again on its own lease (keeping it, and its deadline).
    await store.set('owner', 2, { lease: id });
    expect((await store.get('owner'))?.lease).toBe(id);
    expect(await leaseLives(store, id)).toBe(true);
    // Revoking it deletes its key, as any lease's revocation does.
    expect(await store.revokeLease(id)).toMatchObject({ deletedCount: 1 });
    expect(await store.get('owner')).toBeUndefined();
  } finally {
    await store.close();
  }
});

test('private leases survive a compaction as private (the checkpoint records them) and are revoked after it', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 16 * 1024, deadToLiveRatio: 1 } });
  await store.set('held', 'x', { ttlMs: 60_000 });
  const id = (await store.get('held'))!.lease;
  for (let i = 0; i < 3000; i++) await store.set('churn', { i, pad: 'y'.repeat(50) });
  const deadline = Date.now() + 10_000;
  while (!fs.readdirSync(dataDir).some((f) => f.endsWith('.snap'))) {
    if (Date.now() > deadline) throw new Error('no compaction within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  await store.close();
  // Only the checkpoint and the logs after it are left: the grant is read from the checkpoint.
  store = await openFileStore({ dataDir });
  try {
    await expect(store.set('other', 1, { lease: id })).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
    await store.set('held', 'y', { ttlMs: 60_000 });
    expect(await leaseLives(store, id)).toBe(false);
    expect(store.stats().leases).toBe(1);
  } finally {
    await store.close();
  }
});

test('a data directory of format version 5 opens, and its log is not appended to: new records go to a log of the current version', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  const shared = await store.grantLease(60_000);
  await store.set('old', 1, { lease: shared.id });
  await store.close();
  const [written] = fs.readdirSync(dataDir).filter((f) => f.endsWith('.log'));
  expect(fs.readFileSync(path.join(dataDir, written)).readUInt16LE(8)).toBe(FORMAT_VERSION);
  // Without private leases, a log of version 6 or 7 is a version 5 log but for the version number (and the header CRC).
  const { logPath, bytes } = rewriteLogVersion(dataDir, 5);
  store = await openFileStore({ dataDir });
  try {
    expect((await store.get('old'))?.lease).toBe(shared.id);
    await store.set('new', 1, { ttlMs: 60_000 });
  } finally {
    await store.close();
  }
  expect(fs.readFileSync(logPath).readUInt16LE(8)).toBe(5);
  expect(fs.readFileSync(logPath).length).toBe(bytes.length);
  const logs = fs.readdirSync(dataDir).filter((f) => f.endsWith('.log'));
  expect(logs.length).toBe(2);
  expect(fs.readFileSync(path.join(dataDir, logs[1])).readUInt16LE(8)).toBe(FORMAT_VERSION);
  store = await openFileStore({ dataDir });
  try {
    const id = (await store.get('new'))!.lease;
    await expect(store.set('other', 1, { lease: id })).rejects.toMatchObject({ code: 'LEASE_PRIVATE' });
    expect(store.stats().leases).toBe(2);
  } finally {
    await store.close();
  }
});

describe('through the server', () => {
  test('50 Sets with ttl_ms of one key leave one lease, in a Backup and after SIGKILL and a restart; another key cannot use it', async () => {
    const server = await startServer();
    const kv = new KvClient(server.address, { deadlineMs: 5000 });
    const leases: number[] = [];
    for (let i = 0; i < 50; i++) {
      await kv.set('session/9', { i }, { ttlMs: 600_000 });
      leases.push((await kv.get('session/9'))!.lease);
    }
    expect(await kv.leaseInfo(leases[0])).toBeUndefined();
    expect(await kv.leaseInfo(leases[49])).toMatchObject({ ttlMs: 600_000 });
    const backupDir = makeTempDir('kv-private-lease-backup-');
    expect(await kv.backup(path.join(backupDir, 'kv.backup'))).toMatchObject({ keyCount: 1, leaseCount: 1 });
    const refused = await kv.set('thief', 1, { lease: leases[49] }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(KvError);
    expect(refused).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'LEASE_PRIVATE' });
    kv.close();
    await server.kill();

    const again = await startServer({ dataDir: server.dataDir });
    const kv2 = new KvClient(again.address, { deadlineMs: 5000 });
    try {
      expect((await kv2.get('session/9'))?.lease).toBe(leases[49]);
      for (const id of leases.slice(0, -1)) expect(await kv2.leaseInfo(id)).toBeUndefined();
      expect(await kv2.backup(path.join(backupDir, 'kv2.backup'))).toMatchObject({ keyCount: 1, leaseCount: 1 });
      expect(await kv2.delete('session/9')).toBe(true);
      expect(await kv2.leaseInfo(leases[49])).toBeUndefined();
    } finally {
      kv2.close();
      await again.stop();
    }

    // Restored from the backup, the lease is still private: it goes with its key, and no other key can use it.
    const restored = await startServer({
      dataDir: path.join(backupDir, 'restored'),
      args: ['--restore-from', path.join(backupDir, 'kv.backup')],
    });
    const kv3 = new KvClient(restored.address, { deadlineMs: 5000 });
    try {
      expect((await kv3.get('session/9'))?.lease).toBe(leases[49]);
      await expect(kv3.set('thief', 1, { lease: leases[49] })).rejects.toMatchObject({ reason: 'LEASE_PRIVATE' });
      await kv3.set('session/9', 'no ttl now');
      expect(await kv3.leaseInfo(leases[49])).toBeUndefined();
    } finally {
      kv3.close();
      await restored.stop();
      fs.rmSync(backupDir, { recursive: true, force: true });
    }
  });
});

test('a log whose header says version 5 but holds a private lease (version 6) refuses to open, even in its last batch: never cut off as a torn tail', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir });
  await store.set('first', 1);
  await store.set('own', 1, { ttlMs: 600_000 });
  await store.close();
  const { logPath, bytes } = rewriteLogVersion(dataDir, 5);
  const opened = await openFileStore({ dataDir }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect((opened as Error | undefined)?.message).toMatch(/record type 11 in a file of format version 5 \(first written by version 6\)$/);
  // Nothing was cut off.
  expect(fs.readFileSync(logPath)).toEqual(bytes);
});
