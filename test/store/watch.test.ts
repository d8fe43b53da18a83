/**
 * Watch on the file engine, beyond the shared contract: the history window
 * across reopen, its bounds, slow consumers, progress, catching up in
 * batches, and a model-based check that every watcher sees exactly the
 * committed history from its start, across restarts.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { StoreClosedError, WatchCompactedError, WatchTooSlowError } from '../../src/store/errors';
import { type FileStore, type FileStoreOptions, openFileStore } from '../../src/store/file';
import type { JsonValue, Watch, WatchBatch } from '../../src/store/key-value-store';
import { WatcherRegistry } from '../../src/store/feed/watcher-registry';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';
import { collectUntil } from './store-contract';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

async function withStore<T>(options: Partial<FileStoreOptions>, run: (store: FileStore) => Promise<T>): Promise<T> {
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never', ...options });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

test('the history window is rebuilt at reopen: a watcher resumes across a restart', async () => {
  const dataDir = dirs.make();
  let store = await openFileStore({ dataDir });
  for (let i = 1; i <= 5; i++) await store.set(`k/${i}`, i);
  await store.delete('k/2');
  await store.clear({ prefix: 'k/4' });
  await store.close();
  store = await openFileStore({ dataDir });
  try {
    expect(store.feedStatus.oldestRevision).toBe(1);
    const watch = store.watch({ prefix: 'k/', startRevision: 1, prevEntry: true });
    const { events } = await collectUntil(watch, 7);
    expect(events).toEqual([
      ['put', 'k/1', 1, 1],
      ['put', 'k/2', 2, 2],
      ['put', 'k/3', 3, 3],
      ['put', 'k/4', 4, 4],
      ['put', 'k/5', 5, 5],
      ['delete', 'k/2', 6, undefined],
      ['delete', 'k/4', 7, undefined],
    ]);
    watch.close();
  } finally {
    await store.close();
  }
});

test('a start revision older than the window is WatchCompactedError naming the oldest revision kept', async () => {
  await withStore({ feed: { history: { maxChanges: 10 } } }, async (store) => {
    for (let i = 0; i < 25; i++) await store.set('k', i);
    expect(store.feedStatus.oldestRevision).toBe(16);
    const error: unknown = await store
      .watch({ key: 'k', startRevision: 15 })
      .next()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WatchCompactedError);
    expect(error).toMatchObject({ code: 'COMPACTED', startRevision: 15, oldestRevision: 16 });
    const { events } = await collectUntil(store.watch({ key: 'k', startRevision: 16 }), 25);
    expect(events.map(([, , r]) => r)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  });
});

test('a checkpoint carries the window: after a restart a watch inside it gets every change once, in order, and one below it COMPACTED', async () => {
  const dataDir = dirs.make();
  const options: Partial<FileStoreOptions> = {
    fsync: 'never',
    feed: { history: { maxChanges: 10 } },
    // A checkpoint after every batch with a record in it.
    compaction: { logMinBytes: 1, logToLiveRatio: 0 },
  };
  let store = await openFileStore({ dataDir, ...options });
  for (let i = 1; i <= 25; i++) await store.set(`k/${i % 3}`, i);
  await store.delete('k/0'); // 26
  await pollUntil('the last checkpoint', () => (store.diskUsage.compacting ? undefined : true));
  await store.close();
  // Every change is in a checkpoint: no log holds a record, so the window can only have come from the checkpoint.
  const files = fs.readdirSync(dataDir).filter((f) => /\.(log|snap)$/.test(f));
  expect(files.filter((f) => f.endsWith('.snap'))).toHaveLength(1);
  for (const f of files.filter((f) => f.endsWith('.log'))) expect(fs.statSync(path.join(dataDir, f)).size).toBe(32);
  // A larger window now: it holds what the checkpoint carried, and what comes after.
  store = await openFileStore({ dataDir, ...options, feed: { history: { maxChanges: 20 } } });
  try {
    expect(store.feedStatus.oldestRevision).toBe(17);
    const error: unknown = await store
      .watch({ prefix: 'k/', startRevision: 16 })
      .next()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'COMPACTED', startRevision: 16, oldestRevision: 17 });
    await store.set('k/9', 27);
    const { events } = await collectUntil(store.watch({ prefix: 'k/', startRevision: 17, prevEntry: true }), 27);
    expect(events).toEqual([
      ...[17, 18, 19, 20, 21, 22, 23, 24, 25].map((r) => ['put', `k/${r % 3}`, r, r]),
      ['delete', 'k/0', 26, undefined],
      ['put', 'k/9', 27, 27],
    ]);
  } finally {
    await store.close();
  }
});

test('replaying logs longer than the window rebuilds exactly the window the store had: the same oldest revision, changes and previous entries', async () => {
  const dataDir = dirs.make();
  // No checkpoint: the reopen replays every change from the logs, most of them older than the window.
  const options: Partial<FileStoreOptions> = {
    fsync: 'never',
    feed: { history: { maxChanges: 30 } },
    compaction: { logMinBytes: 2 ** 40 },
  };
  let store = await openFileStore({ dataDir, ...options });
  const seen = async (from: number, to: number): Promise<unknown[]> => {
    const watch = store.watch({ prefix: 'k/', startRevision: from, prevEntry: true });
    const events: unknown[] = [];
    for (;;) {
      const batch = await watch.next();
      for (const e of batch.events) events.push([e.type, e.key, e.revision, e.entry?.valueJson, e.prev?.valueJson, e.prev?.modRevision]);
      if (batch.revision >= to) break;
    }
    watch.close();
    return events;
  };
  try {
    // Batches of several revisions (submitted together), overwrites, deletes and a clear; the newest
    // 40 changes are sets, so the window's oldest change is one of a batch whose other changes it evicted.
    for (let round = 0; round < 20; round++) {
      await Promise.all([0, 1, 2, 3].map((j) => store.set(`k/${(round * 3 + j) % 7}`, { round, j })));
      if (round < 10 && round % 3 === 2) await store.delete(`k/${round % 7}`);
      if (round === 8) await store.clear({ prefix: 'k/1' });
    }
    const before = { ...store.feedStatus, revision: store.revision };
    expect(before.historyChanges).toBe(30);
    expect(before.oldestRevision).toBeGreaterThan(40);
    const events = await seen(before.oldestRevision, before.revision);
    await store.close();
    store = await openFileStore({ dataDir, ...options });
    expect({ ...store.feedStatus, revision: store.revision }).toEqual({ ...before, watchers: 0 });
    expect(await seen(before.oldestRevision, before.revision)).toEqual(events);
  } finally {
    await store.close();
  }
});

test('the window is bounded by bytes too, evicting whole revisions and keeping the newest', async () => {
  await withStore({ feed: { history: { maxBytes: 10_000 } } }, async (store) => {
    for (let i = 0; i < 50; i++) await store.set(`k${i}`, 'x'.repeat(1000));
    const { oldestRevision, historyChanges } = store.feedStatus;
    expect(historyChanges).toBeLessThan(10);
    expect(oldestRevision).toBe(51 - historyChanges);
    // One revision bigger than the whole bound is still kept: the newest always is.
    await store.set('big', 'y'.repeat(20_000));
    expect(store.feedStatus).toMatchObject({ oldestRevision: 51, historyChanges: 1 });
  });
});

test('a consumer that stops reading costs the writer nothing and later gets every change once, in order, from the window', async () => {
  await withStore({ feed: { watcher: { maxQueueBytes: 2000 } } }, async (store) => {
    const watch = store.watch({ prefix: '' });
    expect(await watch.next()).toEqual({ events: [], revision: 0 });
    await store.set('first', 0);
    expect((await watch.next()).events).toHaveLength(1);
    // The queue bound is passed long before these are done: the watcher falls back to the window.
    for (let i = 0; i < 300; i++) await store.set(`k${i % 7}`, i);
    const { events } = await collectUntil(watch, 301);
    expect(events.map(([, , r]) => r)).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
    watch.close();
  });
});

test('a consumer so slow that the window moved past it is ended with WatchTooSlowError naming where to resume', async () => {
  await withStore({ feed: { watcher: { maxQueueBytes: 2000 }, history: { maxChanges: 50 } } }, async (store) => {
    const watch = store.watch({ prefix: '' });
    expect(await watch.next()).toEqual({ events: [], revision: 0 });
    await store.set('first', 0);
    const batch = await watch.next();
    expect(batch.revision).toBe(1);
    for (let i = 0; i < 200; i++) await store.set('k', i);
    const error: unknown = await watch.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WatchTooSlowError);
    expect(error).toMatchObject({ code: 'WATCH_TOO_SLOW', resumeRevision: 2 });
    // It names the oldest revision kept, past the resume revision: it is ended only once nothing can resume it.
    expect(error).toMatchObject({ oldestRevision: store.feedStatus.oldestRevision });
    expect(store.feedStatus.oldestRevision).toBeGreaterThan(2);
    // Resuming there is explicit too: the history is gone.
    await expect(store.watch({ prefix: '', startRevision: 2 }).next()).rejects.toBeInstanceOf(WatchCompactedError);
  });
});

test('catching up comes in batches of whole revisions, and a large clear is never split', async () => {
  await withStore({ feed: { watcher: { maxBatchEvents: 10 } } }, async (store) => {
    for (let i = 0; i < 30; i++) await store.set(`a/${String(i).padStart(2, '0')}`, i);
    await store.clear({ prefix: 'a/' });
    const watch = store.watch({ prefix: 'a/', startRevision: 1 });
    const { events, batches } = await collectUntil(watch, 31);
    expect(events).toHaveLength(60);
    expect(batches.length).toBeGreaterThan(3);
    const clearBatches = batches.filter((b) => b.events.some((e) => e.revision === 31));
    expect(clearBatches).toHaveLength(1);
    expect(clearBatches[0].events.filter((e) => e.revision === 31)).toHaveLength(30);
    watch.close();
  });
});

test('an idle watcher gets progress: no events, the current revision', async () => {
  await withStore({ feed: { progressIntervalMs: 100 } }, async (store) => {
    await store.set('unrelated', 1);
    const watch = store.watch({ prefix: 'quiet/' });
    // First, at once, where it starts; then progress, an interval later.
    expect(await watch.next()).toEqual({ events: [], revision: 1 });
    const started = Date.now();
    const batch = await watch.next();
    expect(batch).toEqual({ events: [], revision: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    await store.set('unrelated', 2);
    expect(await watch.next()).toEqual({ events: [], revision: 2 });
    watch.close();
  });
});

test('a closed watch rejects its pending next() and leaves the feed', async () => {
  await withStore({}, async (store) => {
    const watch = store.watch({ key: 'k' });
    expect(await watch.next()).toEqual({ events: [], revision: 0 });
    const pending = expect(watch.next()).rejects.toBeInstanceOf(StoreClosedError);
    expect(store.feedStatus.watchers).toBe(1);
    watch.close();
    await pending;
    expect(store.feedStatus.watchers).toBe(0);
  });
});

test('a change visits only the watchers of its key and prefixes, however many others there are', () => {
  const registry = new WatcherRegistry<string>();
  for (let i = 0; i < 5000; i++) registry.add({ prefix: `tenant/${i}/` }, `p${i}`);
  for (let i = 0; i < 5000; i++) registry.add({ key: `tenant/${i}/config` }, `k${i}`);
  registry.add({ prefix: '' }, 'all');
  const visited: string[] = [];
  registry.forEachMatch('tenant/42/config', (w) => visited.push(w));
  expect(visited.sort()).toEqual(['all', 'k42', 'p42']);
  registry.remove({ prefix: 'tenant/42/' }, 'p42');
  registry.remove({ prefix: '' }, 'all');
  visited.length = 0;
  registry.forEachMatch('tenant/42/config', (w) => visited.push(w));
  expect(visited).toEqual(['k42']);
  expect(registry.size).toBe(9999);
});

describe('model-based: watchers see exactly the committed history from their start, across reopens', () => {
  type Op = { kind: 'set'; key: string; v: number } | { kind: 'delete'; key: string } | { kind: 'clear'; prefix: string };
  type Step =
    { kind: 'ops'; ops: Op[] } | { kind: 'watch'; target: { key: string } | { prefix: string }; back: number } | { kind: 'reopen' };
  const key = fc.constantFrom('a', 'a/1', 'a/2', 'b/1', 'b/2', 'c');
  const target = fc.oneof(
    key.map((k) => ({ key: k })),
    fc.constantFrom('', 'a', 'a/', 'b/', 'z').map((p) => ({ prefix: p })),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), key, v: fc.nat(100) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), prefix: fc.constantFrom('', 'a', 'a/', 'b/') }) },
  );
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('ops' as const), ops: fc.array(op, { minLength: 1, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('watch' as const), target, back: fc.integer({ min: -2, max: 8 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );

  /** A committed change to one key, as a watcher of that key must see it. */
  type Event = [type: 'put' | 'delete', key: string, revision: number, value: JsonValue | undefined];

  /** A checkpoint at almost every batch boundary: reopens load the history window from checkpoints and the logs after them. */
  const checkpointAlways = { logMinBytes: 1, logToLiveRatio: 0 };

  test.each([
    ['', undefined, 60],
    [' with checkpoints all the time', checkpointAlways, 20],
  ])(
    'random writes (some concurrent), watchers from random revisions, reopens%s',
    async (_name, compaction, numRuns) => {
      const options: Partial<FileStoreOptions> = { fsync: 'never', feed: { progressIntervalMs: 20 }, compaction };
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
          const dataDir = dirs.make();
          let store = await openFileStore({ dataDir, ...options });
          const model = new Map<string, number>();
          const history: Event[] = [];
          const watchers: Array<{
            target: { key: string } | { prefix: string };
            start: number;
            seen: Event[];
            watch: Watch;
            lastRevision: number;
            pump: Promise<void>;
          }> = [];
          const pump = (w: (typeof watchers)[number]): Promise<void> =>
            (async () => {
              for (;;) {
                let batch: WatchBatch;
                try {
                  batch = await w.watch.next();
                } catch (error) {
                  if (error instanceof StoreClosedError) return;
                  throw error;
                }
                for (const e of batch.events) {
                  w.seen.push([
                    e.type,
                    e.key,
                    e.revision,
                    e.entry === undefined ? undefined : (JSON.parse(e.entry.valueJson) as JsonValue),
                  ]);
                }
                w.lastRevision = Math.max(w.lastRevision, batch.revision);
              }
            })();
          try {
            for (const s of steps) {
              if (s.kind === 'ops') {
                // Submitted together: one batch, applied in submission order.
                const results = await Promise.all(
                  s.ops.map((o) =>
                    o.kind === 'set'
                      ? store.set(o.key, o.v)
                      : o.kind === 'delete'
                        ? store.delete(o.key)
                        : store.clear({ prefix: o.prefix }),
                  ),
                );
                s.ops.forEach((o, i) => {
                  const r = results[i] as { revision: number; deleted?: boolean; deletedCount?: number };
                  if (o.kind === 'set') {
                    model.set(o.key, o.v);
                    history.push(['put', o.key, r.revision, o.v]);
                  } else if (o.kind === 'delete') {
                    if (model.delete(o.key)) history.push(['delete', o.key, r.revision, undefined]);
                  } else {
                    const gone = [...model.keys()].filter((k) => k.startsWith(o.prefix)).sort();
                    for (const k of gone) {
                      model.delete(k);
                      history.push(['delete', k, r.revision, undefined]);
                    }
                  }
                });
              } else if (s.kind === 'watch') {
                const start = Math.max(0, store.revision - s.back);
                const w = {
                  target: s.target,
                  start: start === 0 ? store.revision + 1 : start,
                  seen: [] as Event[],
                  lastRevision: 0,
                  watch: store.watch({ ...s.target, startRevision: start }),
                  pump: Promise.resolve(),
                };
                w.pump = pump(w);
                watchers.push(w);
              } else {
                await store.close();
                await Promise.all(watchers.map((w) => w.pump));
                store = await openFileStore({ dataDir, ...options });
                for (const w of watchers) {
                  // Resume where it stopped, as a client would.
                  w.watch = store.watch({ ...w.target, startRevision: Math.max(w.start, w.lastRevision + 1) });
                  w.pump = pump(w);
                }
              }
            }
            const end = store.revision;
            await new Promise((resolve) => setImmediate(resolve));
            for (const w of watchers) {
              const expected = history.filter(
                ([, k, r]) => r >= w.start && ('key' in w.target ? k === w.target.key : k.startsWith(w.target.prefix)),
              );
              const deadline = Date.now() + 5000;
              while (w.lastRevision < end && w.start <= end && Date.now() < deadline)
                await new Promise((resolve) => setTimeout(resolve, 1));
              expect(w.seen).toEqual(expected);
            }
          } finally {
            await store.close();
            await Promise.all(watchers.map((w) => w.pump));
          }
        }),
        { numRuns },
      );
    },
    120_000,
  );
});

// A watch's first batch comes at once: a watch from a revision in the history window whose catch-up finds
// nothing says the revision it caught up to (not only at the first progress, an interval later), and so does
// one from the next revision (a client resuming after the last revision it was sent, or after the one it
// listed at). A client that loses the stream before anything matching happened then resumes from where the
// server had got, not from a start that may have left the window meanwhile.

/** The watch's next batch, or a failure naming `what` if it does not come within `ms`. */
async function nextWithin(watch: Watch, ms: number, what: string): Promise<WatchBatch> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([watch.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

// Progress an hour apart: a first batch within a second cannot be the progress timer's.
const HOURLY_PROGRESS = { feed: { progressIntervalMs: 3_600_000 } };

test('a watch from a revision in the window whose catch-up finds nothing gets its first batch at once, current to the last revision', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    for (let i = 0; i < 50; i++) await store.set(`q/k${i % 10}`, i);
    const targets: Array<[{ key: string } | { prefix: string }, string]> = [
      [{ key: 'q/none' }, 'q/none'],
      [{ prefix: 'q/none/' }, 'q/none/x'],
    ];
    for (const [target, written] of targets) {
      const current = store.revision;
      const watch = store.watch({ ...target, startRevision: 40 });
      try {
        expect(await nextWithin(watch, 1000, 'the first batch')).toEqual({ events: [], revision: current });
        // Live from there: the next change of its key comes, and nothing before it.
        const { revision } = await store.set(written, 'hello');
        const batch = await nextWithin(watch, 1000, 'the change');
        expect(batch.revision).toBe(revision);
        expect(batch.events.map((e) => [e.type, e.key, e.revision])).toEqual([['put', written, revision]]);
      } finally {
        watch.close();
      }
    }
  });
});

test('a catch-up that found events still ends current to the last revision, not to its last event', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    await store.set('q/one', 1);
    for (let i = 0; i < 20; i++) await store.set(`q/other${i}`, i);
    const watch = store.watch({ key: 'q/one', startRevision: 1 });
    try {
      const batch = await nextWithin(watch, 1000, 'the first batch');
      expect(batch.events.map((e) => [e.key, e.revision])).toEqual([['q/one', 1]]);
      expect(batch.revision).toBe(21);
    } finally {
      watch.close();
    }
  });
});

test('a watch from the next revision (a client resuming after the last one it was sent), or further on, says at once where the store is', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    for (let i = 0; i < 5; i++) await store.set('f/k', i);
    const next = store.watch({ key: 'f/k', startRevision: 6 });
    const further = store.watch({ key: 'f/k', startRevision: 9 });
    try {
      // Current to 5 from the start, not at the first progress (an hour later).
      expect(await nextWithin(next, 500, 'the first batch')).toEqual({ events: [], revision: 5 });
      // Further on too (as a client resuming on a store that went back meets it): the store's revision, not its start's.
      expect(await nextWithin(further, 500, 'the first batch')).toEqual({ events: [], revision: 5 });
      await store.set('f/k', 5);
      const batch = await nextWithin(next, 1000, 'the change at its start');
      expect(batch.events.map((e) => e.revision)).toEqual([6]);
    } finally {
      next.close();
      further.close();
    }
  });
});

test('a watch from the next revision whose first change is already queued gets that change first, not an empty batch', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    await store.set('g/k', 0);
    const watch = store.watch({ key: 'g/k', startRevision: 2 });
    try {
      await store.set('g/k', 1);
      const batch = await nextWithin(watch, 1000, 'the first batch');
      expect(batch.events.map((e) => e.revision)).toEqual([2]);
    } finally {
      watch.close();
    }
  });
});
