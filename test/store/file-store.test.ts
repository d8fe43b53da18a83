/** The file engine: the shared contract, durability across reopen, and a model-based check. */
import fs from 'node:fs';
import fc from 'fast-check';
import { openFileStore } from '../../src/store/file';
import { MAX_BATCH_BYTES } from '../../src/store/file/commit-loop';
import type { JsonValue } from '../../src/store/key-value-store';
import { NO_STORE_OBSERVER, type StoreObserver } from '../../src/store/store-observer';
import { runStoreContract } from './store-contract';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

import { dump } from './file-store-support';
const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());
afterEach(() => jest.restoreAllMocks());

runStoreContract('file engine (fsync=always)', () => openFileStore({ dataDir: dirs.make() }));
runStoreContract(
  'file engine (fsync=never, small limits)',
  () => openFileStore({ dataDir: dirs.make(), fsync: 'never', maxKeyBytes: 64, maxValueBytes: 256 }),
  {
    maxKeyBytes: 64,
    maxValueBytes: 256,
  },
);
test('a new file store starts at revision 0 (an etcd namespace starts at its cluster revision)', async () => {
  const store = await openFileStore({ dataDir: dirs.make() });
  expect(store.revision).toBe(0);
  expect(await store.set('a', 1)).toEqual({ revision: 1 });
  await store.close();
});

test("a data directory the store creates is its owner's alone (0700, as etcd's); its missing parents and an existing directory are left as they are", async () => {
  const parent = dirs.make();
  const dataDir = `${parent}/made/data`;
  const store = await openFileStore({ dataDir });
  await store.close();
  expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
  expect(fs.statSync(`${parent}/made`).mode & 0o777).toBe(0o777 & ~process.umask());
  const existing = dirs.make();
  fs.chmodSync(existing, 0o755);
  await (await openFileStore({ dataDir: existing })).close();
  expect(fs.statSync(existing).mode & 0o777).toBe(0o755);
});

describe('file engine: durability across reopen', () => {
  test.each(['always', 'interval', 'never'] as const)(
    'fsync=%s: everything acknowledged is there after close and reopen',
    async (fsync) => {
      const dataDir = dirs.make();
      let store = await openFileStore({ dataDir, fsync, fsyncIntervalMs: 5 });
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(`k/${i % 50}`, { i })));
      await store.delete('k/7');
      await store.clear({ prefix: 'k/1' });
      const before = await dump(store);
      const revision = store.revision;
      await store.close();
      store = await openFileStore({ dataDir, fsync });
      expect(await dump(store)).toEqual(before);
      expect(store.revision).toBe(revision);
      await store.close();
    },
  );

  test('the store revision survives reopen even when the newest change was a delete', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir });
    await store.set('a', 1);
    await store.delete('a');
    await store.close();
    store = await openFileStore({ dataDir });
    expect(store.revision).toBe(2);
    expect(await store.set('b', 1)).toEqual({ revision: 3 });
    await store.close();
  });
});

describe('file engine: model-based', () => {
  type Op =
    | { op: 'set'; key: string; value: JsonValue; expected?: number }
    | { op: 'delete'; key: string; expected?: number }
    | { op: 'clear'; prefix: string }
    | { op: 'list'; prefix: string; startAfter?: string; limit?: number }
    | { op: 'reopen' };

  // A tiny alphabet with astral and high-BMP characters, so keys collide and order matters.
  const alpha = fc.constantFrom('a', 'b', '\uffff', '\u{1f600}');
  const key = fc.array(alpha, { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
  const prefix = fc.array(alpha, { maxLength: 2 }).map((a) => a.join(''));
  const expected = fc.option(fc.nat({ max: 12 }), { nil: undefined });
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        op: fc.constant('set' as const),
        key,
        value: fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<JsonValue>,
        expected,
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key, expected }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const), prefix }) },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('list' as const),
        prefix,
        startAfter: fc.option(key, { nil: undefined }),
        limit: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
  );

  interface ModelEntry {
    value: JsonValue;
    createRevision: number;
    modRevision: number;
    version: number;
  }

  const utf8Sort = (keys: string[]): string[] => keys.sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));

  test('random set/delete/clear/list/reopen sequences agree with a Map model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const dataDir = dirs.make();
        let store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 256, deadToLiveRatio: 0.5 } });
        const model = new Map<string, ModelEntry>();
        let revision = 0;
        try {
          for (const o of ops) {
            if (o.op === 'set') {
              const cur = model.get(o.key);
              const got = await store.set(o.key, o.value, { expectedRevision: o.expected }).catch((e: Error & { code?: string }) => e.code);
              if (o.expected !== undefined && o.expected !== (cur?.modRevision ?? 0)) {
                expect(got).toBe('REVISION_MISMATCH');
              } else {
                revision++;
                model.set(o.key, {
                  value: JSON.parse(JSON.stringify(o.value)) as JsonValue,
                  createRevision: cur?.createRevision ?? revision,
                  modRevision: revision,
                  version: (cur?.version ?? 0) + 1,
                });
                expect(got).toEqual({ revision });
              }
            } else if (o.op === 'delete') {
              const cur = model.get(o.key);
              const got = await store.delete(o.key, { expectedRevision: o.expected }).catch((e: Error & { code?: string }) => e.code);
              if (o.expected !== undefined && o.expected !== (cur?.modRevision ?? 0)) {
                expect(got).toBe('REVISION_MISMATCH');
              } else if (cur === undefined) {
                expect(got).toEqual({ deleted: false, revision });
              } else {
                model.delete(o.key);
                expect(got).toEqual({ deleted: true, revision: ++revision });
              }
            } else if (o.op === 'clear') {
              const doomed = [...model.keys()].filter((k) => k.startsWith(o.prefix));
              for (const k of doomed) model.delete(k);
              if (doomed.length > 0) revision++;
              expect(await store.clear({ prefix: o.prefix })).toEqual({ deletedCount: doomed.length, revision });
            } else if (o.op === 'list') {
              let keys = utf8Sort([...model.keys()].filter((k) => k.startsWith(o.prefix)));
              if (o.startAfter !== undefined) {
                const after = Buffer.from(o.startAfter, 'utf8');
                keys = keys.filter((k) => Buffer.compare(Buffer.from(k, 'utf8'), after) > 0);
              }
              const limit = o.limit ?? Number.POSITIVE_INFINITY;
              expect(await store.listKeys({ prefix: o.prefix, startAfter: o.startAfter, limit: o.limit })).toEqual({
                keys: keys.slice(0, limit),
                more: keys.length > limit,
                revision,
              });
            } else {
              await store.close();
              store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 256, deadToLiveRatio: 0.5 } });
            }
            expect(store.revision).toBe(revision);
          }
          for (const [k, m] of model) expect(await store.get(k)).toEqual({ key: k, lease: 0, ...m });
          expect((await store.listKeys()).keys).toEqual(utf8Sort([...model.keys()]));
        } finally {
          await store.close();
          fs.rmSync(dataDir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('file engine: batches', () => {
  /** An observer that keeps the size of each batch committed. */
  const countingBatches = (): { batches: number[]; observer: StoreObserver } => {
    const batches: number[] = [];
    return { batches, observer: { ...NO_STORE_OBSERVER, committed: (ops) => void batches.push(ops) } };
  };

  test.each([
    ['ASCII', 'x', 900_000],
    // 300,000 characters, 900,000 bytes: counted in UTF-16 units, a batch took three times the bound.
    ['three-byte characters', '€', 300_000],
  ])(
    'a batch is bounded by the UTF-8 bytes its changes write, not by what the requests carried: 40 small merge patches on a 0.9 MB value (%s)',
    async (_, char, count) => {
      const { batches, observer } = countingBatches();
      const store = await openFileStore({ dataDir: dirs.make(), observer });
      const pad = char.repeat(count);
      await store.set('doc', { pad });
      batches.length = 0;
      // Submitted in one tick: before the bound, all 40 (36 MB of values) went into one batch.
      const entries = await Promise.all(Array.from({ length: 40 }, (_, n) => store.update('doc', { n })));
      expect(entries.map((e) => e.version)).toEqual(Array.from({ length: 40 }, (_, n) => n + 2));
      expect(batches.reduce((a, b) => a + b, 0)).toBe(40);
      // 16 MiB of changes, plus the one update that passed it.
      expect(Math.max(...batches)).toBeLessThanOrEqual(Math.ceil(MAX_BATCH_BYTES / Buffer.byteLength(pad)) + 1);
      expect(batches.length).toBeGreaterThanOrEqual(2);
      expect(await store.get('doc')).toMatchObject({ value: { pad, n: 39 }, version: 41 });
      await store.close();
    },
  );

  test('the ops a full batch leaves for the next keep their order, however many: a transaction writing 17 MB, then 250,000 deletes', async () => {
    const { batches, observer } = countingBatches();
    const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never', observer });
    await store.set('last', 0);
    const pad = 'x'.repeat(900_000);
    // Queued in one tick: the transaction counts as 1 KiB and each delete as 64 bytes, so one batch takes them all;
    // the transaction's changes alone pass the bound, and the 250,000 deletes go back to the queue.
    const txn = store.txn({
      compare: [],
      success: Array.from({ length: 19 }, (_, i) => ({ type: 'set', key: `big/${i}`, value: pad })),
      failure: [],
    });
    const deletes = Array.from({ length: 250_000 }, (_, i) => store.delete(i === 249_999 ? 'last' : `missing/${i}`));
    const set = store.set('after', 1);
    expect(await txn).toMatchObject({ succeeded: true, revision: 2 });
    const deleted = await Promise.all(deletes);
    expect(deleted.filter((d) => d.deleted)).toEqual([{ deleted: true, revision: 3 }]);
    expect(await set).toEqual({ revision: 4 });
    expect(batches[0]).toBe(1);
    await store.close();
  });

  test('fsync=always: the next batch is on its way to the disk before the batch before it is answered, and is answered after it', async () => {
    const store = await openFileStore({ dataDir: dirs.make(), fsync: 'always' });
    const real = fs.fdatasync;
    const syncs: Array<() => void> = [];
    // Each fdatasync runs for real, but completes only when the test lets it.
    jest
      .spyOn(fs, 'fdatasync')
      .mockImplementation((fd: number, callback: (err: Error | null) => void) => real(fd, (err) => syncs.push(() => callback(err))));
    const answered: string[] = [];
    let syncsStartedWhenAnswered = 0;
    const first = store.set('a', 1).then((r) => {
      syncsStartedWhenAnswered = jest.mocked(fs.fdatasync).mock.calls.length;
      answered.push(`a@${r.revision}`);
    });
    await pollUntil('the first batch to be on disk', () => (syncs.length === 1 ? true : undefined));
    const second = store.set('b', 2).then((r) => answered.push(`b@${r.revision}`));
    // Queued while the first batch syncs.
    await new Promise((resolve) => setImmediate(resolve));
    syncs.shift()?.();
    // The second batch's fdatasync was started before the first one's caller was answered.
    await first;
    expect(syncsStartedWhenAnswered).toBe(2);
    expect(answered).toEqual(['a@1']);
    await pollUntil('the second batch to be on disk', () => (syncs.length === 1 ? true : undefined));
    syncs.shift()?.();
    await second;
    expect(answered).toEqual(['a@1', 'b@2']);
    jest.restoreAllMocks();
    await store.close();
  });
});
