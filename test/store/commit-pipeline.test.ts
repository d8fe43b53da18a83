/**
 * fsync=always: once a batch is durable, applied and published, the commit
 * loop begins the next (decides it, appends it, starts its fdatasync) before
 * the first batch's callers are answered. These tests hold each fdatasync
 * until the test lets it finish (or fail), to try the promises of the write
 * path against that order: nothing acknowledged before it is on disk,
 * nothing of a failed batch applied, published or acknowledged, decisions
 * against the right state, compaction and close between batches.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type FileStore, openFileStore } from '../../src/store/file';
import { LogWriter } from '../../src/store/file/log-writer';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';
import { eventsThrough, expectReopenEquals, logEnd, logFiles } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());
afterEach(() => jest.restoreAllMocks());

const eio = (): Error => Object.assign(new Error('EIO: i/o error (injected)'), { code: 'EIO' });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const healed = (store: FileStore): Promise<true> => pollUntil('writes to resume', () => (store.failure === undefined ? true : undefined));

/** Each fdatasync runs for real, but completes only when the test lets it (with the disk's result, or an injected error). */
function holdSyncs(): {
  readonly started: number;
  readonly inFlight: number;
  held(n: number): Promise<true>;
  finish(err?: Error): void;
  letAllThrough(): void;
} {
  const real = fs.fdatasync;
  const held: Array<(err?: Error) => void> = [];
  let through = false;
  let started = 0;
  let inFlight = 0;
  jest.spyOn(fs, 'fdatasync').mockImplementation((fd: number, callback: (err: Error | null) => void) => {
    started++;
    inFlight++;
    real(fd, (err) => {
      const finish = (injected?: Error): void => {
        inFlight--;
        callback(injected ?? err);
      };
      if (through) finish();
      else held.push(finish);
    });
  });
  return {
    get started() {
      return started;
    },
    get inFlight() {
      return inFlight;
    },
    held: (n) => pollUntil(`${n} fdatasync(s) to be held`, () => (held.length === n ? true : undefined)),
    finish: (err) => (held.shift() as (err?: Error) => void)(err),
    letAllThrough: () => {
      through = true;
      for (const finish of held.splice(0)) finish();
    },
  };
}

describe('fsync=always: the next batch begun before the last is answered', () => {
  test('the next batch is not seen by reads or watchers while its fdatasync runs, and its failed fdatasync fails it alone', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, heal: { firstDelayMs: 20 } });
    const watch = store.watch({ prefix: '' });
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const disk = holdSyncs();
    let startedWhenAnswered = 0;
    const a = store.set('a', 1).then((r) => {
      startedWhenAnswered = disk.started;
      return r;
    });
    await disk.held(1);
    const durable = logEnd(file);
    const b = store.set('b', 2).catch((e: unknown) => e);
    await turn();
    disk.finish();
    expect(await a).toEqual({ revision: 1 });
    expect(startedWhenAnswered).toBe(2);
    expect(logEnd(file)).toBeGreaterThan(durable);
    await disk.held(1);
    expect(await store.get('b')).toBeUndefined();
    expect(store.revision).toBe(1);
    disk.finish(eio());
    expect(await b).toMatchObject({ code: 'FAILED', retrying: true });
    expect(logEnd(file)).toBe(durable);
    disk.letAllThrough();
    await healed(store);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.set('c', 3)).toEqual({ revision: 2 });
    const events = await eventsThrough(watch, 2);
    expect(events.map((e) => [e.key, e.revision])).toEqual([
      ['a', 1],
      ['c', 2],
    ]);
    watch.close();
    await expectReopenEquals(store, dataDir);
  });

  test('an append of the next batch that fails as the batch before it is answered fails that batch alone', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, heal: { firstDelayMs: 20 } });
    const watch = store.watch({ prefix: '' });
    const disk = holdSyncs();
    const a = store.set('a', 1);
    await disk.held(1);
    jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw eio();
    });
    const b = store.set('b', 2).catch((e: unknown) => e);
    await turn();
    disk.finish();
    expect(await a).toEqual({ revision: 1 });
    expect(await b).toMatchObject({ code: 'FAILED', retrying: true });
    disk.letAllThrough();
    await healed(store);
    expect(await store.get('a')).toMatchObject({ value: 1, modRevision: 1 });
    expect(await store.set('c', 3)).toEqual({ revision: 2 });
    const events = await eventsThrough(watch, 2);
    expect(events.map((e) => [e.key, e.revision])).toEqual([
      ['a', 1],
      ['c', 2],
    ]);
    watch.close();
    await expectReopenEquals(store, dataDir);
  });

  test('compare-and-set, a clear and a CAS after it, queued during an fdatasync, are decided against what the batches before them applied', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const disk = holdSyncs();
    const a = store.set('k', 1);
    await disk.held(1);
    const cas = store.set('k', 2, { expectedRevision: 1 });
    const clear = store.clear();
    const stale = store.set('k', 3, { expectedRevision: 2 }).catch((e: unknown) => e);
    const create = store.set('n', 4, { expectedRevision: 0 });
    const txn = store.txn({
      compare: [{ key: 'n', target: 'version', result: 'equal', number: 1 }],
      success: [{ type: 'get', key: 'n' }],
      failure: [],
    });
    await turn();
    disk.letAllThrough();
    expect(await a).toEqual({ revision: 1 });
    expect(await cas).toEqual({ revision: 2 });
    expect(await clear).toEqual({ deletedCount: 1, revision: 3 });
    expect(await stale).toMatchObject({ code: 'REVISION_MISMATCH' });
    expect(await create).toEqual({ revision: 4 });
    expect(await txn).toMatchObject({ succeeded: true, revision: 4, results: [{ type: 'get', entry: { key: 'n', value: 4 } }] });
    await expectReopenEquals(store, dataDir);
  });

  test('a revocation queued during the fdatasync of a set on its lease removes the key; a keep-alive then finds no lease', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const lease = await store.grantLease(60_000);
    const disk = holdSyncs();
    const a = store.set('x', 1, { lease: lease.id });
    await disk.held(1);
    const revoke = store.revokeLease(lease.id);
    await turn();
    disk.letAllThrough();
    expect(await a).toEqual({ revision: 1 });
    expect(await revoke).toEqual({ deletedCount: 1, revision: 2 });
    expect(await store.get('x')).toBeUndefined();
    await expect(store.keepAliveLease(lease.id)).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    await expectReopenEquals(store, dataDir);
  });

  test('a lease that runs out during an fdatasync expires after it; a keep-alive meanwhile finds it gone with its key', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const lease = await store.grantLease(30);
    await store.set('y', 1, { lease: lease.id });
    const disk = holdSyncs();
    const a = store.set('z', 1);
    await disk.held(1);
    await pollUntil('the lease to run out', async () => ((await store.leaseInfo(lease.id)).remainingMs === 0 ? true : undefined));
    const keepAlive = store.keepAliveLease(lease.id).catch((e: unknown) => e);
    await turn();
    expect(await store.get('y')).toMatchObject({ value: 1 });
    disk.letAllThrough();
    expect(await a).toEqual({ revision: 2 });
    expect(await keepAlive).toMatchObject({ code: 'LEASE_NOT_FOUND' });
    expect(await store.get('y')).toBeUndefined();
    await expectReopenEquals(store, dataDir);
  });

  test('writers that write again as soon as they are answered: every change reaches a watcher once, in order; compaction starts only with no batch in flight', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, compaction: { minBytes: 16 * 1024, deadToLiveRatio: 1 } });
    const disk = holdSyncs();
    disk.letAllThrough();
    const atRotate: Array<{ inFlight: number; unsynced: number }> = [];
    const rotate = LogWriter.prototype.rotate;
    jest.spyOn(LogWriter.prototype, 'rotate').mockImplementation(function (this: LogWriter, seq: number, base: number) {
      const active = (this as unknown as { active: { size: number; synced: number } }).active;
      atRotate.push({ inFlight: disk.inFlight, unsynced: active.size - active.synced });
      return rotate.call(this, seq, base);
    });
    const watch = store.watch({ prefix: '' });
    const acked: number[] = [];
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 60; i++) acked.push((await store.set(`w${w}`, { i, pad: 'x'.repeat(200) })).revision);
    });
    await Promise.all(writers);
    const events = await eventsThrough(watch, 960);
    expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 960 }, (_, i) => i + 1));
    expect(acked.sort((x, y) => x - y)).toEqual(Array.from({ length: 960 }, (_, i) => i + 1));
    watch.close();
    await pollUntil('compaction to finish', () => (store.diskUsage.compacting ? undefined : true));
    expect(atRotate.length).toBeGreaterThan(0);
    expect(atRotate.filter((r) => r.inFlight !== 0 || r.unsynced !== 0)).toEqual([]);
    await expectReopenEquals(store, dataDir);
  });

  test('close() while writers keep writing: every write it accepted is answered and kept, and the loop is left idle', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const lastAcked = new Map<string, number>();
    let closing: Promise<void> | undefined;
    let answered = 0;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 1; ; i++) {
        try {
          await store.set(`w${w}`, i);
        } catch (err) {
          expect(err).toMatchObject({ code: 'CLOSED' });
          return;
        }
        lastAcked.set(`w${w}`, i);
        if (++answered === 200) closing = store.close();
      }
    });
    await Promise.all(writers);
    await closing;
    expect((store as unknown as { commits: { active: boolean } }).commits.active).toBe(false);
    const again = await openFileStore({ dataDir });
    for (const [key, value] of lastAcked) expect(await again.get(key)).toMatchObject({ value });
    await again.close();
  });
});

test('fsync=always, random append and fdatasync failures under concurrent compare-and-set writers: acknowledged writes are kept, failed ones never seen, the watcher gets each change once, in order', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({
    dataDir,
    heal: { firstDelayMs: 2, maxDelayMs: 10 },
    compaction: { minBytes: 16 * 1024, deadToLiveRatio: 1 },
  });
  const watch = store.watch({ prefix: '' });
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const realSync = fs.fdatasync;
  jest
    .spyOn(fs, 'fdatasync')
    .mockImplementation((fd: number, callback: (err: Error | null) => void) =>
      realSync(fd, (err) => callback(err ?? (random() < 0.08 ? eio() : null))),
    );
  const realWrite = fs.writeSync;
  jest.spyOn(fs, 'writeSync').mockImplementation((...args: Parameters<typeof fs.writeSync>) => {
    if (random() < 0.03) throw eio();
    return (realWrite as (...a: unknown[]) => number)(...args);
  });
  const acked = new Map<string, { value: string; revision: number }>();
  const rejected = new Set<string>();
  let failures = 0;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    const key = `w${w}`;
    let expected = 0;
    for (let i = 0; i < 80; i++) {
      const value = `${key}-${i}`;
      try {
        const { revision } = await store.set(key, value, { expectedRevision: expected });
        acked.set(key, { value, revision });
        expected = revision;
      } catch (err) {
        expect(err).toMatchObject({ code: 'FAILED' });
        failures++;
        rejected.add(value);
        await healed(store);
        // The failed write was never applied: the key is as last acknowledged.
        expect((await store.get(key))?.value).toBe(acked.get(key)?.value);
      }
    }
  });
  await Promise.all(writers);
  jest.restoreAllMocks();
  await healed(store);
  const revision = store.revision;
  const events = await eventsThrough(watch, revision);
  watch.close();
  expect(events.map((e) => e.revision)).toEqual(Array.from({ length: revision }, (_, i) => i + 1));
  expect(events.filter((e) => e.entry !== undefined && rejected.has(JSON.parse(e.entry.valueJson) as string))).toEqual([]);
  expect(events.length).toBe(8 * 80 - failures);
  expect(failures).toBeGreaterThan(0);
  for (const [key, { value, revision: at }] of acked) {
    expect(events.find((e) => e.revision === at)).toMatchObject({ key, entry: { valueJson: JSON.stringify(value) } });
  }
  await expectReopenEquals(store, dataDir);
  const again = await openFileStore({ dataDir });
  for (const [key, { value }] of acked) expect(await again.get(key)).toMatchObject({ value });
  await again.close();
});
