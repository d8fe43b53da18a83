/**
 * The behaviour every KeyValueStore engine must have (the abstract-level
 * idea: one suite, run by each engine's test file). `openStore` returns a
 * fresh, empty store each time it is called.
 */
import { InvalidKeyError, InvalidValueError, RevisionMismatchError, StoreClosedError, TooLargeError } from '../../src/store/errors';
import type { JsonValue, KeyValueStore } from '../../src/store/key-value-store';

export interface ContractLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

export function runStoreContract(
  name: string,
  openStore: () => Promise<KeyValueStore>,
  limits: ContractLimits = { maxKeyBytes: 4096, maxValueBytes: 1048576 },
): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    let store: KeyValueStore;
    beforeEach(async () => {
      store = await openStore();
    });
    afterEach(async () => {
      await store.close();
    });

    test('a new store is empty at revision 0', async () => {
      expect(store.revision).toBe(0);
      expect(await store.get('nothing')).toBeUndefined();
      expect(await store.listKeys()).toEqual({ keys: [], more: false });
    });

    test('set then get returns the value and etcd-style revisions', async () => {
      expect(await store.set('a', { n: 1, s: 'x', l: [true, null] })).toEqual({ revision: 1 });
      expect(await store.set('b', 'two')).toEqual({ revision: 2 });
      expect(await store.set('a', 3.5)).toEqual({ revision: 3 });
      expect(await store.get('a')).toEqual({ key: 'a', value: 3.5, createRevision: 1, modRevision: 3, version: 2 });
      expect(await store.get('b')).toEqual({ key: 'b', value: 'two', createRevision: 2, modRevision: 2, version: 1 });
      expect(store.revision).toBe(3);
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
      expect(await store.delete('a')).toEqual({ deleted: true, revision: 2 });
      expect(await store.get('a')).toBeUndefined();
      expect(await store.delete('a')).toEqual({ deleted: false, revision: 2 });
      expect(store.revision).toBe(2);
    });

    test('a key set again after delete starts a new life (createRevision, version 1)', async () => {
      await store.set('a', 1);
      await store.delete('a');
      await store.set('a', 2);
      expect(await store.get('a')).toEqual({ key: 'a', value: 2, createRevision: 3, modRevision: 3, version: 1 });
    });

    test('compare-and-set on modRevision; 0 means create only', async () => {
      expect(await store.set('a', 1, { expectedRevision: 0 })).toEqual({ revision: 1 });
      const err = await store.set('a', 2, { expectedRevision: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RevisionMismatchError);
      expect(err).toMatchObject({ code: 'REVISION_MISMATCH', key: 'a', expectedRevision: 0, currentRevision: 1 });
      await expect(store.set('a', 2, { expectedRevision: 7 })).rejects.toMatchObject({ currentRevision: 1 });
      expect(await store.set('a', 2, { expectedRevision: 1 })).toEqual({ revision: 2 });
      await expect(store.set('missing', 1, { expectedRevision: 5 })).rejects.toMatchObject({
        code: 'REVISION_MISMATCH',
        currentRevision: 0,
      });
      expect(store.revision).toBe(2);
    });

    test('conditional delete: exact revision deletes, mismatch fails, missing key with 0 is not deleted', async () => {
      await store.set('a', 1);
      await expect(store.delete('a', { expectedRevision: 5 })).rejects.toBeInstanceOf(RevisionMismatchError);
      await expect(store.delete('a', { expectedRevision: 0 })).rejects.toMatchObject({ currentRevision: 1 });
      expect(await store.delete('a', { expectedRevision: 1 })).toEqual({ deleted: true, revision: 2 });
      expect(await store.delete('a', { expectedRevision: 0 })).toEqual({ deleted: false, revision: 2 });
      await expect(store.delete('a', { expectedRevision: 2 })).rejects.toMatchObject({
        code: 'REVISION_MISMATCH',
        currentRevision: 0,
      });
    });

    test('concurrent compare-and-set: exactly one of many racing creators wins', async () => {
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.set('lock', i, { expectedRevision: 0 })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(store.revision).toBe(1);
    });

    test('concurrent writes get distinct, increasing revisions', async () => {
      const revs = await Promise.all(Array.from({ length: 50 }, (_, i) => store.set(`k${i}`, i)));
      expect(new Set(revs.map((r) => r.revision)).size).toBe(50);
      expect(Math.max(...revs.map((r) => r.revision))).toBe(50);
    });

    test('listKeys orders keys by Unicode code point, not UTF-16 code unit', async () => {
      // U+FFFD sorts before U+1F600 in code point order, after it in UTF-16 order.
      const keys = ['b', 'a', '\u{1F600}', '\uFFFD', 'a\u{10000}', 'a\uE000', 'ä', 'A'];
      for (const k of keys) await store.set(k, 1);
      expect((await store.listKeys()).keys).toEqual(['A', 'a', 'a\uE000', 'a\u{10000}', 'b', 'ä', '\uFFFD', '\u{1F600}']);
    });

    test('listKeys filters by prefix and pages with startAfter and limit', async () => {
      for (const k of ['user/1', 'user/2', 'user/3', 'user/4', 'userx', 'other', 'use']) await store.set(k, k);
      expect(await store.listKeys({ prefix: 'user/' })).toEqual({ keys: ['user/1', 'user/2', 'user/3', 'user/4'], more: false });
      const page1 = await store.listKeys({ prefix: 'user/', limit: 2 });
      expect(page1).toEqual({ keys: ['user/1', 'user/2'], more: true });
      const page2 = await store.listKeys({ prefix: 'user/', limit: 2, startAfter: page1.keys[1] });
      expect(page2).toEqual({ keys: ['user/3', 'user/4'], more: false });
      expect(await store.listKeys({ prefix: 'user/', startAfter: 'user/25' })).toEqual({ keys: ['user/3', 'user/4'], more: false });
      expect(await store.listKeys({ startAfter: 'user/4' })).toEqual({ keys: ['userx'], more: false });
      expect(await store.listKeys({ prefix: 'user/', startAfter: 'a' })).toMatchObject({ keys: ['user/1', 'user/2', 'user/3', 'user/4'] });
      expect(await store.listKeys({ prefix: 'nope' })).toEqual({ keys: [], more: false });
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
      expect(await store.clear({ prefix: 'p/' })).toEqual({ deletedCount: 3, revision: 5 });
      expect((await store.listKeys()).keys).toEqual(['q/1']);
      expect(await store.clear({ prefix: 'p/' })).toEqual({ deletedCount: 0, revision: 5 });
      expect(await store.clear()).toEqual({ deletedCount: 1, revision: 6 });
      expect(await store.clear()).toEqual({ deletedCount: 0, revision: 6 });
      expect(store.revision).toBe(6);
      expect(await store.listKeys()).toEqual({ keys: [], more: false });
    });

    test('writes queued around a clear apply in order', async () => {
      const [, cleared, after] = await Promise.all([store.set('p/1', 1), store.clear({ prefix: 'p/' }), store.set('p/2', 2)]);
      expect(cleared).toEqual({ deletedCount: 1, revision: 2 });
      expect(after).toEqual({ revision: 3 });
      expect((await store.listKeys()).keys).toEqual(['p/2']);
    });

    test('invalid keys are rejected with InvalidKeyError', async () => {
      await expect(store.set('', 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get('')).rejects.toMatchObject({ code: 'INVALID_KEY' });
      await expect(store.set('a\uD800', 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete('\uDC00b')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.listKeys({ prefix: '\uD83D' })).rejects.toBeInstanceOf(InvalidKeyError);
      expect(store.revision).toBe(0);
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
      await expect(pending).resolves.toEqual({ revision: 2 });
      await closing;
      await store.close();
      await expect(store.listKeys()).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.delete('a')).rejects.toBeInstanceOf(StoreClosedError);
      await expect(store.clear()).rejects.toBeInstanceOf(StoreClosedError);
    });
  });
}
