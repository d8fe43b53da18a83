/**
 * The behaviour every KeyValueStore engine must have (the abstract-level
 * idea: one suite, run by each engine's test file). `openStore` returns a
 * fresh, empty store each time it is called.
 */
import {
  InvalidArgumentError,
  InvalidKeyError,
  KeyNotFoundError,
  LeaseNotFoundError,
  InvalidValueError,
  RevisionMismatchError,
  StoreClosedError,
  TooLargeError,
} from '../../src/store/errors';
import type { JsonValue, KeyValueStore, Watch, WatchBatch } from '../../src/store/key-value-store';

/** Events as [type, key, revision, value] for compact expectations. */
type Seen = Array<[string, string, number, JsonValue | undefined]>;

/** Reads batches until one is current to `revision`; returns the events and the batches' revisions. */
export async function collectUntil(watch: Watch, revision: number): Promise<{ events: Seen; batches: WatchBatch[] }> {
  const events: Seen = [];
  const batches: WatchBatch[] = [];
  for (;;) {
    const batch = await watch.next();
    batches.push(batch);
    for (const e of batch.events) {
      events.push([e.type, e.key, e.revision, e.entry === undefined ? undefined : (JSON.parse(e.entry.valueJson) as JsonValue)]);
    }
    if (batch.revision >= revision) return { events, batches };
  }
}

/** What set p/1, clear p/ and set p/2 give when applied one at a time, in each of the six orders. */
function serialOutcomes(base: number): unknown[] {
  const orders = [
    ['first', 'cleared', 'after'],
    ['first', 'after', 'cleared'],
    ['cleared', 'first', 'after'],
    ['cleared', 'after', 'first'],
    ['after', 'first', 'cleared'],
    ['after', 'cleared', 'first'],
  ];
  return orders.map((order) => {
    let revision = base;
    const keys = new Set<string>();
    const out: Record<string, unknown> = {};
    for (const op of order) {
      if (op === 'cleared') {
        const deletedCount = keys.size;
        if (deletedCount > 0) revision++;
        keys.clear();
        out.cleared = { deletedCount, revision };
      } else {
        keys.add(op === 'first' ? 'p/1' : 'p/2');
        out[op] = { revision: ++revision };
      }
    }
    return { ...out, keys: [...keys].sort() };
  });
}

export interface ContractLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

/** Where engines may differ, each written down in docs/scaling.md and shown by the engine's own tests. */
export interface EngineTraits {
  /**
   * 'as-called': calls made at once apply in the order they were made (the
   * file engine queues them). 'any': each applies exactly once, in some
   * order (etcd orders requests as they reach its leader).
   */
  concurrentCallOrder: 'as-called' | 'any';
  /**
   * A watch from the next revision, asked for before the write it waits
   * for: 'if-nothing-queued' says where it stands first only if that write's
   * events are not there yet at its first next() (the file engine publishes
   * before the write returns); 'at-once' says it at once, whatever follows
   * (the etcd engine, on etcd's answer to the watch's creation, which comes
   * before the events etcd sends later).
   */
  firstWatchBatch: 'if-nothing-queued' | 'at-once';
}

/**
 * Revisions are checked relative to the store's revision when it opened
 * (0 for a new file store; the cluster's revision for a new etcd namespace),
 * so `r(n)` is "the n-th revision after opening".
 */
export function runStoreContract(
  name: string,
  openStore: () => Promise<KeyValueStore>,
  limits: ContractLimits = { maxKeyBytes: 4096, maxValueBytes: 1048576 },
  traits: EngineTraits = { concurrentCallOrder: 'as-called', firstWatchBatch: 'if-nothing-queued' },
): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    let store: KeyValueStore;
    let base = 0;
    const r = (n: number): number => base + n;
    beforeEach(async () => {
      store = await openStore();
      base = store.revision;
    });
    afterEach(async () => {
      await store.close();
    });

    test('a new store is empty, and reads do not move its revision', async () => {
      expect(Number.isSafeInteger(base) && base >= 0).toBe(true);
      expect(await store.get('nothing')).toBeUndefined();
      expect(await store.listKeys()).toMatchObject({ keys: [], more: false });
      expect(store.revision).toBe(r(0));
    });

    test('set then get returns the value and etcd-style revisions', async () => {
      expect(await store.set('a', { n: 1, s: 'x', l: [true, null] })).toEqual({ revision: r(1) });
      expect(await store.set('b', 'two')).toEqual({ revision: r(2) });
      expect(await store.set('a', 3.5)).toEqual({ revision: r(3) });
      expect(await store.get('a')).toEqual({ key: 'a', value: 3.5, createRevision: r(1), modRevision: r(3), version: 2, lease: 0 });
      expect(await store.get('b')).toEqual({ key: 'b', value: 'two', createRevision: r(2), modRevision: r(2), version: 1, lease: 0 });
      expect(store.revision).toBe(r(3));
    });

    test.each<[string, JsonValue]>([
      ['null', null],
      ['false', false],
      ['zero', 0],
      ['empty string', ''],
      ['empty object', {}],
      ['empty array', []],
      ['unicode', { '𝄞': 'ünï\u{1F600}' }],
    ])('stores the JSON value %s as itself', async (_, value) => {
      await store.set('k', value);
      expect((await store.get('k'))?.value).toEqual(value);
    });

    test('delete removes a key and bumps the revision; deleting a missing key does not', async () => {
      await store.set('a', 1);
      expect(await store.delete('a')).toEqual({ deleted: true, revision: r(2) });
      expect(await store.get('a')).toBeUndefined();
      expect(await store.delete('a')).toEqual({ deleted: false, revision: r(2) });
      expect(store.revision).toBe(r(2));
    });

    test('a key set again after delete starts a new life (createRevision, version 1)', async () => {
      await store.set('a', 1);
      await store.delete('a');
      await store.set('a', 2);
      expect(await store.get('a')).toEqual({ key: 'a', value: 2, createRevision: r(3), modRevision: r(3), version: 1, lease: 0 });
    });

    test('compare-and-set on modRevision; 0 means create only', async () => {
      expect(await store.set('a', 1, { expectedRevision: 0 })).toEqual({ revision: r(1) });
      const err = await store.set('a', 2, { expectedRevision: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RevisionMismatchError);
      expect(err).toMatchObject({ code: 'REVISION_MISMATCH', key: 'a', expectedRevision: 0, currentRevision: r(1) });
      await expect(store.set('a', 2, { expectedRevision: r(7) })).rejects.toMatchObject({ currentRevision: r(1) });
      expect(await store.set('a', 2, { expectedRevision: r(1) })).toEqual({ revision: r(2) });
      await expect(store.set('missing', 1, { expectedRevision: r(5) })).rejects.toMatchObject({
        code: 'REVISION_MISMATCH',
        currentRevision: 0,
      });
      expect(store.revision).toBe(r(2));
    });

    test('conditional delete: exact revision deletes, mismatch fails, missing key with 0 is not deleted', async () => {
      await store.set('a', 1);
      await expect(store.delete('a', { expectedRevision: r(5) })).rejects.toBeInstanceOf(RevisionMismatchError);
      await expect(store.delete('a', { expectedRevision: 0 })).rejects.toMatchObject({ currentRevision: r(1) });
      expect(await store.delete('a', { expectedRevision: r(1) })).toEqual({ deleted: true, revision: r(2) });
      expect(await store.delete('a', { expectedRevision: 0 })).toEqual({ deleted: false, revision: r(2) });
      await expect(store.delete('a', { expectedRevision: r(2) })).rejects.toMatchObject({
        code: 'REVISION_MISMATCH',
        currentRevision: 0,
      });
    });

    test('concurrent compare-and-set: exactly one of many racing creators wins', async () => {
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.set('lock', i, { expectedRevision: 0 })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(store.revision).toBe(r(1));
    });

    test('concurrent writes get distinct, increasing revisions', async () => {
      const revs = await Promise.all(Array.from({ length: 50 }, (_, i) => store.set(`k${i}`, i)));
      expect(new Set(revs.map((r) => r.revision)).size).toBe(50);
      expect(Math.max(...revs.map((r) => r.revision))).toBe(r(50));
    });

    test('listKeys orders keys by Unicode code point, not UTF-16 code unit', async () => {
      // U+FFFD sorts before U+1F600 in code point order, after it in UTF-16 order.
      const keys = ['b', 'a', '\u{1F600}', '\uFFFD', 'a\u{10000}', 'a\uE000', 'ä', 'A'];
      for (const k of keys) await store.set(k, 1);
      expect((await store.listKeys()).keys).toEqual(['A', 'a', 'a\uE000', 'a\u{10000}', 'b', 'ä', '\uFFFD', '\u{1F600}']);
    });

    test('listKeys filters by prefix and pages with startAfter and limit', async () => {
      for (const k of ['user/1', 'user/2', 'user/3', 'user/4', 'userx', 'other', 'use']) await store.set(k, k);
      expect(await store.listKeys({ prefix: 'user/' })).toMatchObject({ keys: ['user/1', 'user/2', 'user/3', 'user/4'], more: false });
      // Each page says the store revision it was read at.
      const page1 = await store.listKeys({ prefix: 'user/', limit: 2 });
      expect(page1).toEqual({ keys: ['user/1', 'user/2'], more: true, revision: r(7) });
      await store.set('other', 'again');
      const page2 = await store.listKeys({ prefix: 'user/', limit: 2, startAfter: page1.keys[1] });
      expect(page2).toEqual({ keys: ['user/3', 'user/4'], more: false, revision: r(8) });
      expect(await store.listKeys({ prefix: 'nope', limit: 0 })).toEqual({ keys: [], more: false, revision: r(8) });
      expect(await store.listKeys({ prefix: 'user/', startAfter: 'user/25' })).toMatchObject({ keys: ['user/3', 'user/4'], more: false });
      expect(await store.listKeys({ startAfter: 'user/4' })).toMatchObject({ keys: ['userx'], more: false });
      expect(await store.listKeys({ prefix: 'user/', startAfter: 'a' })).toMatchObject({ keys: ['user/1', 'user/2', 'user/3', 'user/4'] });
      expect(await store.listKeys({ prefix: 'nope' })).toMatchObject({ keys: [], more: false });
      expect(await store.listKeys({ limit: 7 })).toMatchObject({ more: false });
      expect(await store.listKeys({ limit: 6 })).toMatchObject({ more: true });
    });

    test('paging through an astral prefix visits every key once, in order', async () => {
      const keys = ['\u{1F600}/a', '\u{1F600}/\u{1F601}', '\u{1F600}/\uFFFF', '\u{1F600}/z', '\u{1F601}'];
      for (const k of keys) await store.set(k, 1);
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await store.listKeys({ prefix: '\u{1F600}/', limit: 1, startAfter });
        seen.push(...page.keys);
        if (!page.more) break;
        startAfter = page.keys[page.keys.length - 1];
      }
      expect(seen).toEqual(['\u{1F600}/a', '\u{1F600}/z', '\u{1F600}/\uFFFF', '\u{1F600}/\u{1F601}']);
    });

    test('clear under a prefix is one revision however many keys it removes', async () => {
      for (const k of ['p/1', 'p/2', 'p/3', 'q/1']) await store.set(k, 1);
      expect(await store.clear({ prefix: 'p/' })).toEqual({ deletedCount: 3, revision: r(5) });
      expect((await store.listKeys()).keys).toEqual(['q/1']);
      expect(await store.clear({ prefix: 'p/' })).toEqual({ deletedCount: 0, revision: r(5) });
      expect(await store.clear()).toEqual({ deletedCount: 1, revision: r(6) });
      expect(await store.clear()).toEqual({ deletedCount: 0, revision: r(6) });
      expect(store.revision).toBe(r(6));
      expect(await store.listKeys()).toMatchObject({ keys: [], more: false });
    });

    test('writes made at once around a clear each apply once, in call order where the engine keeps it', async () => {
      const [first, cleared, after] = await Promise.all([store.set('p/1', 1), store.clear({ prefix: 'p/' }), store.set('p/2', 2)]);
      const observed = { first, cleared, after, keys: (await store.listKeys()).keys };
      if (traits.concurrentCallOrder === 'as-called') {
        expect(observed).toEqual({
          first: { revision: r(1) },
          cleared: { deletedCount: 1, revision: r(2) },
          after: { revision: r(3) },
          keys: ['p/2'],
        });
      } else {
        expect(serialOutcomes(base)).toContainEqual(observed);
      }
    });

    test('invalid keys are rejected with InvalidKeyError', async () => {
      await expect(store.set('', 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get('')).rejects.toMatchObject({ code: 'INVALID_KEY' });
      await expect(store.set('a\uD800', 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete('\uDC00b')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.listKeys({ prefix: '\uD83D' })).rejects.toBeInstanceOf(InvalidKeyError);
      expect(store.revision).toBe(r(0));
    });

    test('a bad listKeys or clear argument is named as the caller passed it', async () => {
      await expect(store.listKeys({ prefix: 'p\uD83D' })).rejects.toThrow(
        'listKeys option prefix "p\\ud83d" is not valid Unicode text (it has a lone surrogate)',
      );
      await expect(store.listKeys({ startAfter: '\uD800' })).rejects.toThrow(
        'listKeys option startAfter "\\ud800" is not valid Unicode text (it has a lone surrogate)',
      );
      await expect(store.clear({ prefix: '\uDC00' })).rejects.toThrow(
        'clear option prefix "\\udc00" is not valid Unicode text (it has a lone surrogate)',
      );
      await expect(store.listKeys({ startAfter: 7 as unknown as string })).rejects.toThrow(
        'listKeys option startAfter must be a string, got number',
      );
    });

    test('size limits count UTF-8 bytes of the key and JSON bytes of the value', async () => {
      const okKey = '€'.repeat(Math.floor(limits.maxKeyBytes / 3));
      await store.set(okKey, 1);
      const err = await store.set('€'.repeat(Math.floor(limits.maxKeyBytes / 3) + 1), 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooLargeError);
      expect(err).toMatchObject({ code: 'TOO_LARGE', what: 'key', limit: limits.maxKeyBytes });
      // A string value's JSON form is its length plus two quotes.
      await store.set('v', 'x'.repeat(limits.maxValueBytes - 2));
      await expect(store.set('v', 'x'.repeat(limits.maxValueBytes - 1))).rejects.toMatchObject({
        code: 'TOO_LARGE',
        what: 'value',
        size: limits.maxValueBytes + 1,
      });
    });

    test.each<[string, unknown]>([
      ['undefined', undefined],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['a function', () => 1],
      ['a nested NaN', { a: [1, Number.NaN] }],
      ['a nested undefined', { a: undefined }],
      ['a bigint', 1n],
    ])('a non-JSON value (%s) is rejected with InvalidValueError', async (_, value) => {
      await expect(store.set('k', value as JsonValue)).rejects.toBeInstanceOf(InvalidValueError);
      expect(await store.get('k')).toBeUndefined();
    });

    test('after close every call fails with StoreClosedError, and close is idempotent', async () => {
      await store.set('a', 1);
      const pending = store.set('b', 2);
      const closing = store.close();
      await expect(store.get('a')).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.set('c', 1)).rejects.toMatchObject({ code: 'CLOSED' });
      // A write queued before close still completes.
      await expect(pending).resolves.toEqual({ revision: r(2) });
      await closing;
      await store.close();
      await expect(store.listKeys()).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.delete('a')).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.clear()).rejects.toBeInstanceOf(StoreClosedError);
    });

    describe('watch', () => {
      test('a prefix watch from now sees sets, deletes and each clear as one batch of deletes, in revision order', async () => {
        await store.set('other', 0);
        const watch = store.watch({ prefix: 'a/' });
        try {
          await store.set('a/1', { v: 1 });
          await store.set('b', 'not watched');
          await store.set('a/2', [2]);
          await store.set('a/1', 'again');
          await store.delete('a/2');
          await store.set('a/3', null);
          const { revision } = await store.clear({ prefix: 'a/' });
          const { events, batches } = await collectUntil(watch, revision);
          expect(events).toEqual([
            ['put', 'a/1', r(2), { v: 1 }],
            ['put', 'a/2', r(4), [2]],
            ['put', 'a/1', r(5), 'again'],
            ['delete', 'a/2', r(6), undefined],
            ['put', 'a/3', r(7), null],
            ['delete', 'a/1', r(8), undefined],
            ['delete', 'a/3', r(8), undefined],
          ]);
          // The clear's two deletes came in one batch (batches may hold several whole revisions).
          const clearBatch = batches.find((b) => b.events.some((e) => e.revision === r(8)));
          expect(clearBatch?.events.filter((e) => e.revision === r(8)).map((e) => e.key)).toEqual(['a/1', 'a/3']);
          for (let i = 1; i < batches.length; i++) expect(batches[i].revision).toBeGreaterThanOrEqual(batches[i - 1].revision);
        } finally {
          watch.close();
        }
      });

      test('a key watch sees only that key, with entries carrying revisions', async () => {
        const watch = store.watch({ key: 'k' });
        try {
          await store.set('k/child', 1);
          await store.set('k', 1);
          await store.set('kk', 1);
          const { revision } = await store.set('k', 2);
          const { events, batches } = await collectUntil(watch, revision);
          expect(events).toEqual([
            ['put', 'k', r(2), 1],
            ['put', 'k', r(4), 2],
          ]);
          const last = batches.flatMap((b) => b.events).at(-1);
          expect(last?.entry).toMatchObject({ createRevision: r(2), modRevision: r(4), version: 2 });
        } finally {
          watch.close();
        }
      });

      test('a start revision in the past replays history, then goes live; prevEntry gives previous entries', async () => {
        await store.set('p/a', 1);
        await store.set('p/a', 2);
        await store.delete('p/a');
        const watch = store.watch({ prefix: 'p/', startRevision: r(2), prevEntry: true });
        try {
          const { revision } = await store.set('p/a', 3);
          const batches = (await collectUntil(watch, revision)).batches.flatMap((b) => b.events);
          expect(batches.map((e) => [e.type, e.revision, e.prev === undefined ? undefined : JSON.parse(e.prev.valueJson)])).toEqual([
            ['put', r(2), 1],
            ['delete', r(3), 2],
            ['put', r(4), undefined],
          ]);
          expect(batches[1].prev).toMatchObject({ modRevision: r(2), version: 2, createRevision: r(1) });
        } finally {
          watch.close();
        }
      });

      test('a start revision in the future waits for it', async () => {
        const watch = store.watch({ prefix: '', startRevision: r(3) });
        try {
          await store.set('x', 1);
          await store.set('x', 2);
          await store.set('x', 3);
          const { events } = await collectUntil(watch, r(3));
          expect(events).toEqual([['put', 'x', r(3), 3]]);
        } finally {
          watch.close();
        }
      });

      test.each<[string, Parameters<KeyValueStore['watch']>[0]]>([
        ['neither key nor prefix', {}],
        ['both key and prefix', { key: 'a', prefix: 'a' }],
        ['a negative start revision', { prefix: '', startRevision: -1 }],
        ['a fractional start revision', { prefix: '', startRevision: 1.5 }],
      ])('a watch with %s fails with InvalidArgumentError', async (_, options) => {
        await expect(store.watch(options).next()).rejects.toBeInstanceOf(InvalidArgumentError);
      });

      test('an empty key is refused like everywhere else', async () => {
        await expect(store.watch({ key: '' }).next()).rejects.toBeInstanceOf(InvalidKeyError);
      });

      test('a watch from now first says where now is: no events, the revision it starts after', async () => {
        const { revision } = await store.set('now/a', 1);
        const watch = store.watch({ prefix: 'now/' });
        try {
          expect(await watch.next()).toEqual({ events: [], revision });
          const next = await store.set('now/b', 2);
          const batch = await watch.next();
          expect(batch.events.map((e) => [e.key, e.revision])).toEqual([['now/b', next.revision]]);
        } finally {
          watch.close();
        }
        // Resuming from there (as a client that lost the stream before any change does) misses nothing.
        const resumed = store.watch({ prefix: 'now/', startRevision: revision + 1 });
        try {
          expect((await resumed.next()).events.map((e) => e.key)).toEqual(['now/b']);
        } finally {
          resumed.close();
        }
      });

      test('closing the store ends open watches with StoreClosedError', async () => {
        const watch = store.watch({ prefix: '' });
        expect((await watch.next()).events).toEqual([]);
        const pending = expect(watch.next()).rejects.toBeInstanceOf(StoreClosedError);
        await store.close();
        await pending;
        await expect(store.watch({ prefix: '' }).next()).rejects.toBeInstanceOf(StoreClosedError);
      });
    });

    describe('list with values', () => {
      test('entries under a prefix in code point order, paged, with the revision they were read at', async () => {
        await store.set('p/b', 2);
        await store.set('p/a', { one: 1 });
        await store.set('q', 'outside');
        const { revision } = await store.set('p/c', null);
        const first = await store.list({ prefix: 'p/', limit: 2 });
        expect(first).toEqual({
          entries: [
            { key: 'p/a', value: { one: 1 }, createRevision: r(2), modRevision: r(2), version: 1, lease: 0 },
            { key: 'p/b', value: 2, createRevision: r(1), modRevision: r(1), version: 1, lease: 0 },
          ],
          more: true,
          revision,
        });
        const second = await store.list({ prefix: 'p/', startAfter: 'p/b', limit: 2 });
        expect(second.entries.map((e) => e.key)).toEqual(['p/c']);
        expect(second.more).toBe(false);
      });
    });

    describe('update (JSON merge patch)', () => {
      test('merges into the stored object atomically and answers the new entry', async () => {
        await store.set('doc', { a: 1, nested: { x: 1, y: 2 }, drop: true });
        const [one, two] = await Promise.all([
          store.update('doc', { nested: { y: null, z: 3 } }),
          store.update('doc', { b: 2, drop: null }),
        ]);
        // Both patches apply, one after the other: the later one's entry has both (in call order where the engine keeps it).
        const [earlier, later] = [one, two].sort((x, y) => x.modRevision - y.modRevision);
        if (traits.concurrentCallOrder === 'as-called') expect([earlier, later]).toEqual([one, two]);
        expect(later.value).toEqual({ a: 1, nested: { x: 1, z: 3 }, b: 2 });
        expect(later).toMatchObject({ key: 'doc', createRevision: r(1), modRevision: r(3), version: 3 });
        expect(earlier.modRevision).toBe(r(2));
        expect((await store.get('doc'))?.value).toEqual(later.value);
      });

      test('a missing key is NOT_FOUND unless createIfMissing; expectedRevision is compare-and-set', async () => {
        await expect(store.update('none', { a: 1 })).rejects.toBeInstanceOf(KeyNotFoundError);
        expect(await store.update('none', { a: 1 }, { createIfMissing: true })).toMatchObject({ value: { a: 1 }, version: 1 });
        await expect(store.update('none', { a: 2 }, { expectedRevision: r(7) })).rejects.toMatchObject({ code: 'REVISION_MISMATCH' });
        expect(store.revision).toBe(r(1));
      });

      test('the merged value must obey the value limit, and the refusal says it is the patched value', async () => {
        await store.set('doc', { a: 'x'.repeat(limits.maxValueBytes - 20) });
        const size = JSON.stringify({ a: 'x'.repeat(limits.maxValueBytes - 20), b: 'y'.repeat(30) }).length;
        await expect(store.update('doc', { b: 'y'.repeat(30) })).rejects.toMatchObject({
          code: 'TOO_LARGE',
          what: 'patched',
          message: `the value of key "doc" with the patch applied would be ${size} bytes JSON-encoded; the limit is ${limits.maxValueBytes} bytes`,
        });
        await expect(
          store.txn({ compare: [], success: [{ type: 'update', key: 'doc', patch: { b: 'y'.repeat(30) } }], failure: [] }),
        ).rejects.toMatchObject({ code: 'TOO_LARGE', what: 'patched' });
        await expect(store.update('doc', undefined as unknown as JsonValue)).rejects.toBeInstanceOf(InvalidArgumentError);
      });
    });

    describe('transactions', () => {
      test('compares pick the branch; all its writes take one revision and reach a watcher in one batch', async () => {
        await store.set('acct/a', 100);
        await store.set('acct/b', 0);
        const watch = store.watch({ prefix: 'acct/', startRevision: r(3) });
        try {
          // On an engine that says at once where a watch stands (on etcd's answer to its creation), that comes first.
          // Taken before the transaction: etcd says it only if it has not reached the watch's start when it answers.
          if (traits.firstWatchBatch === 'at-once') expect(await watch.next()).toEqual({ events: [], revision: r(2) });
          const result = await store.txn({
            compare: [
              { key: 'acct/a', result: 'greater', target: 'value', value: 30 },
              { key: 'acct/a', result: 'equal', target: 'modRevision', number: r(1) },
            ],
            success: [
              { type: 'set', key: 'acct/a', value: 70 },
              { type: 'set', key: 'acct/b', value: 30 },
              { type: 'get', key: 'acct/a' },
            ],
            failure: [],
          });
          expect(result).toMatchObject({ succeeded: true, revision: r(3) });
          expect(result.results).toEqual([
            { type: 'set', revision: r(3) },
            { type: 'set', revision: r(3) },
            { type: 'get', entry: { key: 'acct/a', value: 70, createRevision: r(1), modRevision: r(3), version: 2, lease: 0 } },
          ]);
          const batch = await watch.next();
          expect(batch.events.map((e) => [e.key, e.revision])).toEqual([
            ['acct/a', r(3)],
            ['acct/b', r(3)],
          ]);
        } finally {
          watch.close();
        }
        const failed = await store.txn({
          compare: [{ key: 'acct/a', result: 'equal', target: 'version', number: 1 }],
          success: [{ type: 'delete', key: 'acct/a' }],
          failure: [{ type: 'get', key: 'acct/b' }],
        });
        expect(failed).toMatchObject({ succeeded: false, revision: r(3), results: [{ type: 'get', entry: { value: 30 } }] });
      });

      test.each([
        ['deletes', { type: 'delete' as const, key: 'own/x' }],
        ['clears', { type: 'clear' as const, prefix: 'own/x' }],
        ['sets with a new ttl', { type: 'set' as const, key: 'own/x', value: 2, ttlMs: 60_000 }],
      ])(
        'a transaction that %s the key of a private lease and then attaches another key to it fails with LEASE_PRIVATE, and writes nothing',
        async (_, op) => {
          await store.set('own/x', 1, { ttlMs: 60_000 });
          const lease = (await store.get('own/x'))!.lease;
          await expect(
            store.txn({ compare: [], success: [op, { type: 'set', key: 'own/y', value: 1, lease }], failure: [] }),
          ).rejects.toMatchObject({
            code: 'LEASE_PRIVATE',
            message: expect.stringMatching(/^success op 1 on key "own\/y": lease /) as unknown,
          });
          expect((await store.get('own/x'))?.lease).toBe(lease);
          expect(await store.get('own/y')).toBeUndefined();
        },
      );

      test('an op that fails fails the whole transaction and writes nothing', async () => {
        const refused = await store
          .txn({
            compare: [],
            success: [
              { type: 'set', key: 'x', value: 1 },
              { type: 'update', key: 'missing', patch: { a: 1 } },
            ],
            failure: [],
          })
          .catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(KeyNotFoundError);
        // Which op it was: one of up to 128.
        expect(refused).toMatchObject({ code: 'NOT_FOUND', message: 'success op 1 on key "missing": key "missing" not found' });
        expect(await store.get('x')).toBeUndefined();
        expect(store.revision).toBe(r(0));
      });

      test.each<[string, Parameters<KeyValueStore['txn']>[0]]>([
        [
          'a key written twice',
          {
            compare: [],
            success: [
              { type: 'set', key: 'k', value: 1 },
              { type: 'delete', key: 'k' },
            ],
            failure: [],
          },
        ],
        [
          'a set under a cleared prefix',
          {
            compare: [],
            success: [
              { type: 'clear', prefix: 'a/' },
              { type: 'set', key: 'a/1', value: 1 },
            ],
            failure: [],
          },
        ],
        [
          'overlapping clears',
          {
            compare: [],
            success: [],
            failure: [
              { type: 'clear', prefix: 'a' },
              { type: 'clear', prefix: 'a/b' },
            ],
          },
        ],
        ['LESS on an object', { compare: [{ key: 'k', result: 'less', target: 'value', value: {} }], success: [], failure: [] }],
        [
          'a negative revision compare',
          { compare: [{ key: 'k', result: 'equal', target: 'modRevision', number: -1 }], success: [], failure: [] },
        ],
        [
          'too many ops',
          { compare: [], success: Array.from({ length: 129 }, (_, i) => ({ type: 'get' as const, key: `k${i}` })), failure: [] },
        ],
      ])('%s is InvalidArgumentError', async (_, request) => {
        await expect(store.txn(request)).rejects.toBeInstanceOf(InvalidArgumentError);
      });

      test('an empty key in a transaction says which compare or op holds it', async () => {
        const ops = (key: string) => [
          { type: 'get' as const, key: 'ok' },
          { type: 'set' as const, key, value: 1 },
        ];
        await expect(store.txn({ compare: [], success: ops(''), failure: [] })).rejects.toThrow(
          'success op 1: key must be a non-empty string',
        );
        await expect(store.txn({ compare: [], success: [], failure: ops('') })).rejects.toThrow(
          'failure op 1: key must be a non-empty string',
        );
        await expect(
          store.txn({
            compare: [
              { key: 'ok', result: 'equal', target: 'version', number: 0 },
              { key: '', result: 'equal', target: 'version', number: 0 },
            ],
            success: [],
            failure: [],
          }),
        ).rejects.toMatchObject({ code: 'INVALID_KEY', message: 'compare 1 on key "": key must be a non-empty string' });
      });

      test('an op refused for its options or value says which op, in the branch not taken too', async () => {
        const ops = [
          { type: 'get' as const, key: 'ok' },
          { type: 'set' as const, key: 'k', value: 1 },
          { type: 'set' as const, key: 'k2', value: 1, lease: 1, ttlMs: 1000 },
        ];
        await expect(store.txn({ compare: [], success: [], failure: ops })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          message: 'failure op 2: key "k2": give a lease or a ttl_ms, not both',
        });
        await expect(
          store.txn({ compare: [], success: [{ type: 'set', key: 'v', value: Number.NaN }], failure: [] }),
        ).rejects.toMatchObject({ code: 'INVALID_VALUE', message: expect.stringMatching(/^success op 0: /) as unknown });
      });

      test("a compare's bad number names its field as the request does (mod_revision, not modRevision), and the compare once", async () => {
        for (const [target, field] of [
          ['modRevision', 'mod_revision'],
          ['createRevision', 'create_revision'],
          ['version', 'version'],
        ] as const) {
          await expect(
            store.txn({ compare: [{ key: 'k', result: 'equal', target, number: -3 }], success: [], failure: [] }),
          ).rejects.toMatchObject({ message: `compare 0 on key "k": ${field} must be a whole number >= 0 (got -3)` });
        }
      });

      test('clear and update inside a transaction', async () => {
        await store.set('t/1', 1);
        await store.set('t/2', 2);
        await store.set('doc', { a: 1 });
        const result = await store.txn({
          compare: [],
          success: [
            { type: 'clear', prefix: 't/' },
            { type: 'update', key: 'doc', patch: { b: 2 } },
          ],
          failure: [],
        });
        expect(result.results).toEqual([
          { type: 'clear', deletedCount: 2, revision: r(4) },
          { type: 'update', entry: { key: 'doc', value: { a: 1, b: 2 }, createRevision: r(3), modRevision: r(4), version: 2, lease: 0 } },
        ]);
        expect((await store.listKeys()).keys).toEqual(['doc']);
      });
    });

    describe('leases', () => {
      test('keys attached to a lease are deleted together, at one revision, when it is revoked', async () => {
        const lease = await store.grantLease(60_000);
        expect(store.revision).toBe(r(0));
        await store.set('session/a', 1, { lease: lease.id });
        await store.set('session/b', 2, { lease: lease.id });
        await store.set('session/c', 3);
        expect(await store.leaseInfo(lease.id, { keys: true })).toMatchObject({
          id: lease.id,
          ttlMs: 60_000,
          keys: ['session/a', 'session/b'],
        });
        expect((await store.get('session/a'))?.lease).toBe(lease.id);
        const watch = store.watch({ prefix: 'session/' });
        try {
          expect(await watch.next()).toEqual({ events: [], revision: r(3) });
          expect(await store.revokeLease(lease.id)).toEqual({ deletedCount: 2, revision: r(4) });
          const batch = await watch.next();
          expect(batch.events.map((e) => [e.type, e.key, e.revision])).toEqual([
            ['delete', 'session/a', r(4)],
            ['delete', 'session/b', r(4)],
          ]);
        } finally {
          watch.close();
        }
        expect((await store.listKeys()).keys).toEqual(['session/c']);
        await expect(store.leaseInfo(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
        await expect(store.keepAliveLease(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
        await expect(store.revokeLease(lease.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
      });

      test('a key set with a ttl expires by itself; setting it again without one detaches it', async () => {
        await store.set('cache/a', 'soon gone', { ttlMs: 300 });
        await store.set('cache/b', 'kept', { ttlMs: 300 });
        await store.set('cache/b', 'kept for good');
        expect((await store.get('cache/b'))?.lease).toBe(0);
        const deadline = Date.now() + 10_000;
        while ((await store.get('cache/a')) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(await store.get('cache/a')).toBeUndefined();
        expect((await store.get('cache/b'))?.value).toBe('kept for good');
      });

      test('keep-alive renews a lease; its keys outlive the original ttl', async () => {
        const lease = await store.grantLease(400);
        await store.set('held', 1, { lease: lease.id });
        const until = Date.now() + 1000;
        while (Date.now() < until) {
          // The ttl as granted: the file engine keeps 400 ms; etcd counts whole seconds, with a minimum (docs/scaling.md).
          expect(await store.keepAliveLease(lease.id)).toEqual({ id: lease.id, ttlMs: lease.ttlMs });
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(await store.get('held')).toBeDefined();
        const info = await store.leaseInfo(lease.id);
        expect(info.remainingMs).toBeGreaterThan(0);
        expect(info.remainingMs).toBeLessThanOrEqual(lease.ttlMs);
      });

      test('bad lease arguments are refused', async () => {
        await expect(store.set('k', 1, { lease: 123456 })).rejects.toBeInstanceOf(LeaseNotFoundError);
        await expect(store.set('k', 1, { lease: 1, ttlMs: 10 })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.grantLease(0)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.grantLease(366 * 24 * 3600 * 1000)).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.set('k', 1, { ttlMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
        expect(store.revision).toBe(r(0));
      });

      test("a transaction's missing lease is named with the op that attached it", async () => {
        const lease = await store.grantLease(60_000);
        const success = [
          { type: 'set' as const, key: 'a', value: 1, lease: lease.id },
          { type: 'get' as const, key: 'a' },
          { type: 'set' as const, key: 'b', value: 2, lease: 424242 },
        ];
        const refused = store.txn({ compare: [], success, failure: [] });
        await expect(refused).rejects.toBeInstanceOf(LeaseNotFoundError);
        await expect(refused).rejects.toThrow(/^success op 2 on key "b": lease 424242 not found/);
        expect(await store.get('a')).toBeUndefined();
      });
    });
  });
}
