/**
 * Leases on the file engine, beyond the shared contract: what survives a
 * restart (leases, their keys, a full time to live again), expiry as one
 * change, leases through compaction, and data directories of the previous
 * format version.
 */
import fs from 'node:fs';
import { openFileStore } from '../../src/store/file';
import { EXPIRY_CHUNK } from '../../src/store/file/lease-clock';
import { tempDataDirs } from '../support/temp-dirs';
import { rewriteLogVersion } from './file-store-support';
import { collectUntil } from './store-contract';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('leases and their keys survive a restart, and a restart gives every lease its full time to live again', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  const lease = await store.grantLease(1500);
  await store.set('lock/a', 'owner-1', { lease: lease.id });
  await store.set('cache/x', 1, { ttlMs: 1500 });
  await store.close();
  // Longer than the leases' time to live: the downtime does not count against them.
  await new Promise((r) => setTimeout(r, 1700));
  store = await openFileStore({ dataDir });
  try {
    expect((await store.get('lock/a'))?.lease).toBe(lease.id);
    expect(await store.get('cache/x')).toBeDefined();
    const info = await store.leaseInfo(lease.id, { keys: true });
    expect(info.keys).toEqual(['lock/a']);
    expect(info.remainingMs).toBeGreaterThan(1000);
    await waitFor('both leases to expire', async () => (await store.list()).entries.length === 0);
  } finally {
    await store.close();
  }
});

test("a lease's expiry deletes all its keys as one change, which watchers see at one revision", async () => {
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never' });
  try {
    const lease = await store.grantLease(200);
    await store.set('s/1', 1, { lease: lease.id });
    await store.set('s/2', 2, { lease: lease.id });
    await store.set('s/3', 3);
    const watch = store.watch({ prefix: 's/', startRevision: 4 });
    const { events } = await collectUntil(watch, 4);
    watch.close();
    expect(events).toEqual([
      ['delete', 's/1', 4, undefined],
      ['delete', 's/2', 4, undefined],
    ]);
    await expect(store.leaseInfo(lease.id)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
  } finally {
    await store.close();
  }
});

test('leases that run out together are revoked a chunk at a time, the event loop turning between chunks', async () => {
  const dataDir = dirs.make();
  const count = 6 * EXPIRY_CHUNK + 1;
  let store = await openFileStore({ dataDir, fsync: 'never' });
  for (let i = 0; i < count; i++) await store.set(`t/${i}`, i, { ttlMs: 800 });
  const written = store.revision;
  await store.close();
  // A restart gives every lease its full time again from the same moment: all of them run out at once.
  store = await openFileStore({ dataDir, fsync: 'never' });
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  try {
    const watch = store.watch({ prefix: 't/', startRevision: written + 1 });
    const turnsSeen = new Set<number>();
    let deleted = 0;
    while (deleted < count) {
      const batch = await watch.next();
      deleted += batch.events.length;
      if (batch.events.length > 0) turnsSeen.add(turns);
    }
    watch.close();
    expect(deleted).toBe(count);
    // One batch of every expiry held the event loop until the last key was gone (all seen in one turn).
    expect(turnsSeen.size).toBeGreaterThanOrEqual(5);
    expect((await store.list()).entries).toEqual([]);
  } finally {
    ticking = false;
    await store.close();
  }
});

test('a write during an expiry wave waits for the chunk in flight, not for the whole wave', async () => {
  const dataDir = dirs.make();
  const count = 20 * EXPIRY_CHUNK;
  let store = await openFileStore({ dataDir, fsync: 'never' });
  for (let i = 0; i < count; i++) await store.set(`w/${i}`, i, { ttlMs: 600 });
  await store.close();
  // fsync=always: each chunk waits for its fdatasync, as a write does; the loop polls meanwhile, as the server's does.
  store = await openFileStore({ dataDir, fsync: 'always', busyPollUs: 200 });
  try {
    // Arming them took a while: hold the event loop until every lease's time is up, so that all of them are due at once.
    const due = Date.now() + 800;
    while (Date.now() < due);
    const deadline = Date.now() + 10_000;
    while ((await store.get('w/0')) !== undefined) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the first chunk to expire');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const before = (await store.list({ prefix: 'w/' })).entries.length;
    await store.set('probe', 1);
    const after = (await store.list({ prefix: 'w/' })).entries.length;
    // The write went after the chunk in flight (and perhaps one more, submitted as the write came). Queued all at once,
    // the chunks went before it: five or more of them here, with the busy polling the server does.
    expect(before - after).toBeLessThanOrEqual(2 * EXPIRY_CHUNK);
    expect(after).toBeGreaterThan(0);
    await waitFor('the wave to end', async () => (await store.get(`w/${count - 1}`)) === undefined);
    expect((await store.list({ prefix: 'w/' })).entries).toEqual([]);
  } finally {
    await store.close();
  }
}, 30_000);

test('leases survive a compaction (they are in the snapshot) and a restart after it', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 16 * 1024, deadToLiveRatio: 1 } });
  const lease = await store.grantLease(60_000);
  await store.set('held', 'x', { lease: lease.id });
  for (let i = 0; i < 3000; i++) await store.set('churn', { i, pad: 'y'.repeat(50) });
  await waitFor('a compaction', () => fs.readdirSync(dataDir).some((f) => f.endsWith('.snap')));
  await store.close();
  store = await openFileStore({ dataDir });
  try {
    expect(await store.leaseInfo(lease.id, { keys: true })).toMatchObject({ ttlMs: 60_000, keys: ['held'] });
    expect((await store.revokeLease(lease.id)).deletedCount).toBe(1);
  } finally {
    await store.close();
  }
});

test('a data directory written by the previous format version (3) opens, and is written on in version 4', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  await store.set('old', { written: 'before leases' });
  await store.close();
  // Without leases, a version 4 log is a version 3 log but for the version number (and the header CRC).
  rewriteLogVersion(dataDir, 3);
  store = await openFileStore({ dataDir });
  try {
    expect((await store.get('old'))?.value).toEqual({ written: 'before leases' });
    await store.set('new', 1, { ttlMs: 60_000 });
  } finally {
    await store.close();
  }
  store = await openFileStore({ dataDir });
  try {
    expect((await store.get('new'))?.lease).toBeGreaterThan(0);
  } finally {
    await store.close();
  }
});

test('a version 3 log that a version 4 or 5 build appended lease records to opens whole, its last batch included', async () => {
  // Those builds appended to the newest log whatever its version: its header said 3, its records were version 4's.
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  await store.set('plain', 1);
  const lease = await store.grantLease(600_000);
  await store.set('leased', 2, { lease: lease.id });
  await store.close();
  const { logPath, bytes } = rewriteLogVersion(dataDir, 3);
  store = await openFileStore({ dataDir });
  try {
    expect((await store.get('leased'))?.lease).toBe(lease.id);
    expect((await store.get('plain'))?.value).toBe(1);
    expect(store.stats().leases).toBe(1);
  } finally {
    await store.close();
  }
  expect(fs.readFileSync(logPath).length).toBe(bytes.length);
});

test('a keep-alive that finds its lease past its deadline answers "not found" only once the expiry has committed: its keys are gone then', async () => {
  const store = await openFileStore({ dataDir: dirs.make() });
  let refused = 0;
  try {
    for (let round = 0; round < 12; round++) {
      const lease = await store.grantLease(30);
      await store.set(`ka/${round}`, round, { lease: lease.id });
      // Watch the lease without refreshing it (leaseInfo) until its time is up, then keep it alive: refreshed if its timer has
      // not fired yet (then wait again), else refused. A refusal must mean the key is gone already.
      for (;;) {
        const info = await store.leaseInfo(lease.id, { keys: false }).catch(() => undefined);
        if (info === undefined) break; // its expiry committed before a keep-alive could ask
        if (info.remainingMs === 0) {
          const refresh = await store.keepAliveLease(lease.id).then(
            () => undefined,
            (error: unknown) => error,
          );
          if (refresh !== undefined) {
            expect(refresh).toMatchObject({ code: 'LEASE_NOT_FOUND' });
            expect(await store.get(`ka/${round}`)).toBeUndefined();
            refused++;
            break;
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    await store.close();
  }
  // The keep-alive met the lease on its way out in most rounds (else this test would check nothing).
  expect(refused).toBeGreaterThanOrEqual(6);
}, 30_000);
