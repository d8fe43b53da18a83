/**
 * decide() is pure: ops and the committed state in, changes and outcomes
 * out. Tested here without a disk, a loop or an index.
 */
import type { ValidTxnOp } from '../../src/store/abstract-key-value-store';
import type { StoredEntry } from '../../src/store/change';
import { KeyNotFoundError, LeaseNotFoundError, LeasePrivateError, RevisionMismatchError, TooLargeError } from '../../src/store/errors';
import { jsonEqual } from '../../src/store/compare';
import { type DecideContext, type DecideState, type WriteOp, decide } from '../../src/store/file/decide';
import type { Compare } from '../../src/store/key-value-store';

const noop = { resolve: () => undefined, reject: () => undefined };
const entry = (modRevision: number, createRevision = modRevision, version = 1, valueJson = '1', lease = 0): StoredEntry => ({
  valueJson,
  createRevision,
  modRevision,
  version,
  lease,
});

function stateOf(
  revision: number,
  entries: Record<string, StoredEntry>,
  leases: Record<number, string[]> = {},
  privateLeases: readonly number[] = [],
): DecideState {
  return {
    revision,
    get: (key) => entries[key],
    entriesUnder: (prefix) =>
      Object.entries(entries)
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    lease: (id) => (leases[id] === undefined ? undefined : { ttlMs: 1000, keys: new Set(leases[id]), private: privateLeases.includes(id) }),
  };
}

let nextLease = 100;
const context: DecideContext = { maxValueBytes: 1024, newLeaseId: () => nextLease++ };
beforeEach(() => {
  nextLease = 100;
});

const set = (key: string, valueJson: string, expectedRevision?: number, lease = 0, ttlMs?: number): WriteOp => ({
  kind: 'set',
  key,
  keyBytes: Buffer.byteLength(key),
  valueJson,
  valueBytes: Buffer.byteLength(valueJson),
  expectedRevision,
  lease,
  ttlMs,
  ...noop,
});
const del = (key: string, expectedRevision?: number): WriteOp => ({
  kind: 'delete',
  key,
  keyBytes: Buffer.byteLength(key),
  expectedRevision,
  ...noop,
});
const clear = (prefix: string): WriteOp => ({ kind: 'clear', prefix, prefixBytes: Buffer.byteLength(prefix), ...noop });
const update = (key: string, patch: unknown, createIfMissing = false, expectedRevision?: number): WriteOp => ({
  kind: 'update',
  key,
  keyBytes: Buffer.byteLength(key),
  patch: patch as never,
  createIfMissing,
  expectedRevision,
  ...noop,
});
const txn = (compare: Compare[], success: ValidTxnOp[], failure: ValidTxnOp[] = []): WriteOp => ({
  kind: 'txn',
  txn: { compare, success, failure },
  ...noop,
});
const tset = (key: string, valueJson: string): ValidTxnOp => ({
  type: 'set',
  key,
  keyBytes: key.length,
  valueJson,
  valueBytes: valueJson.length,
  lease: 0,
  ttlMs: undefined,
});

test('each op that changes something takes the next revision; later ops see earlier ones in the batch', () => {
  const state = stateOf(10, { a: entry(4, 2, 3) });
  const d = decide(state, [set('a', '"x"'), set('b', '2'), set('a', '"y"'), del('b')], context);
  expect(d.revision).toBe(14);
  expect(d.changes).toEqual([
    { type: 'set', key: 'a', revision: 11, entry: entry(11, 2, 4, '"x"'), prev: entry(4, 2, 3) },
    { type: 'set', key: 'b', revision: 12, entry: entry(12, 12, 1, '2'), prev: undefined },
    { type: 'set', key: 'a', revision: 13, entry: entry(13, 2, 5, '"y"'), prev: entry(11, 2, 4, '"x"') },
    { type: 'delete', key: 'b', revision: 14, prev: entry(12, 12, 1, '2') },
  ]);
  expect(d.outcomes).toEqual([
    { value: { revision: 11 } },
    { value: { revision: 12 } },
    { value: { revision: 13 } },
    { value: { deleted: true, revision: 14 } },
  ]);
});

test('compare-and-set checks mod_revision against the state including the batch so far', () => {
  const state = stateOf(5, { a: entry(5) });
  const d = decide(
    state,
    [set('a', '1', 5), set('a', '2', 5), set('new', '1', 0), set('new', '1', 0), del('gone', 0), del('gone', 3)],
    context,
  );
  expect(d.changes.map((c) => [c.type, c.revision])).toEqual([
    ['set', 6],
    ['set', 7],
  ]);
  expect(d.outcomes[0]).toEqual({ value: { revision: 6 } });
  expect(d.outcomes[1]).toEqual({ error: new RevisionMismatchError('a', 5, 6) });
  expect(d.outcomes[2]).toEqual({ value: { revision: 7 } });
  expect(d.outcomes[3]).toEqual({ error: new RevisionMismatchError('new', 0, 7) });
  // Deleting a missing key "only if missing" is no change and no conflict; with any other revision it is a conflict.
  expect(d.outcomes[4]).toEqual({ value: { deleted: false, revision: 7 } });
  expect(d.outcomes[5]).toEqual({ error: new RevisionMismatchError('gone', 3, 0) });
});

test('a clear is one change listing the keys it removes; clearing nothing changes nothing', () => {
  const state = stateOf(3, { 'a/1': entry(1), 'a/2': entry(2), b: entry(3) });
  const d = decide(state, [clear('a/')], context);
  expect(d.changes).toEqual([
    {
      type: 'clear',
      prefix: 'a/',
      revision: 4,
      removed: [
        ['a/1', entry(1)],
        ['a/2', entry(2)],
      ],
    },
  ]);
  expect(d.outcomes).toEqual([{ value: { deletedCount: 2, revision: 4 } }]);
  expect(decide(state, [clear('zzz')], context)).toEqual({
    changes: [],
    outcomes: [{ value: { deletedCount: 0, revision: 3 } }],
    revision: 3,
  });
});

test('deleting a missing key is no change', () => {
  expect(decide(stateOf(2, {}), [del('x')], context)).toEqual({
    changes: [],
    outcomes: [{ value: { deleted: false, revision: 2 } }],
    revision: 2,
  });
});

describe('transactions', () => {
  const state = stateOf(7, { a: entry(3, 1, 2, '{"n":1,"s":"x"}'), b: entry(5, 5, 1, '10') });

  test('all compares hold: the success ops run as one change with one revision; gets see earlier writes of the transaction', () => {
    const d = decide(
      state,
      [
        txn(
          [
            { key: 'a', result: 'equal', target: 'modRevision', number: 3 },
            { key: 'a', result: 'equal', target: 'value', value: { s: 'x', n: 1.0 } },
            { key: 'b', result: 'greater', target: 'value', value: 9.5 },
            { key: 'missing', result: 'equal', target: 'version', number: 0 },
          ],
          [tset('c', '"new"'), { type: 'get', key: 'c' }, { type: 'delete', key: 'b', keyBytes: 1 }, { type: 'get', key: 'b' }],
          [{ type: 'get', key: 'a' }],
        ),
      ],
      context,
    );
    expect(d.revision).toBe(8);
    expect(d.changes.map((c) => [c.type, c.revision])).toEqual([
      ['set', 8],
      ['delete', 8],
    ]);
    expect(d.outcomes[0]).toEqual({
      value: {
        succeeded: true,
        revision: 8,
        results: [
          { type: 'set', revision: 8 },
          { type: 'get', entry: { key: 'c', value: 'new', createRevision: 8, modRevision: 8, version: 1, lease: 0 } },
          { type: 'delete', deleted: true, revision: 8 },
          { type: 'get', entry: undefined },
        ],
      },
    });
  });

  test('a compare that fails runs the failure ops; a value compare on a missing key is false either way', () => {
    for (const result of ['equal', 'not_equal'] as const) {
      const d = decide(
        state,
        [txn([{ key: 'missing', result, target: 'value', value: null }], [tset('x', '1')], [{ type: 'get', key: 'b' }])],
        context,
      );
      expect(d.changes).toEqual([]);
      expect(d.outcomes[0]).toMatchObject({ value: { succeeded: false, revision: 7, results: [{ type: 'get', entry: { value: 10 } }] } });
    }
  });

  test('a failing op fails the whole transaction: nothing of it is written', () => {
    const d = decide(
      state,
      [txn([], [tset('x', '1'), { type: 'update', key: 'nope', keyBytes: 4, patch: { a: 1 }, createIfMissing: false }])],
      context,
    );
    expect(d.changes).toEqual([]);
    expect(d.revision).toBe(7);
    expect(d.outcomes[0]).toEqual({ error: expect.any(KeyNotFoundError) as unknown });
    // Which op it was, in the message: the same class and code.
    expect((d.outcomes[0] as { error: Error }).error.message).toBe('success op 1 on key "nope": key "nope" not found');
  });

  test('LESS and GREATER compare numbers as numbers and strings in code point order; other kinds never compare', () => {
    const s = stateOf(1, { n: entry(1, 1, 1, '2'), s: entry(1, 1, 1, '"\uffff"'), o: entry(1, 1, 1, '{}') });
    const holds = (c: Compare): boolean =>
      (decide(s, [txn([c], [])], context).outcomes[0] as { value: { succeeded: boolean } }).value.succeeded;
    expect(holds({ key: 'n', result: 'less', target: 'value', value: 10 })).toBe(true);
    expect(holds({ key: 'n', result: 'greater', target: 'value', value: 10 })).toBe(false);
    // U+FFFF sorts before U+10000 in code point order, after it in UTF-16 order.
    expect(holds({ key: 's', result: 'less', target: 'value', value: '\u{10000}' })).toBe(true);
    expect(holds({ key: 'o', result: 'less', target: 'value', value: 1 })).toBe(false);
    expect(holds({ key: 'o', result: 'greater', target: 'value', value: 1 })).toBe(false);
  });
});

test('a batch stops once its changes pass maxBytes (UTF-8): the ops after are left undecided, the first is always decided', () => {
  // A value of 40 three-byte characters: 40 UTF-16 units, 120 bytes in the log.
  const state = stateOf(5, { big: entry(5, 5, 1, JSON.stringify({ pad: '€'.repeat(40) })) });
  // Each update writes the whole value again: far more than its request carries.
  const ops = [update('big', { n: 1 }), update('big', { n: 2 }), set('s', '1')];
  const all = decide(state, ops, context);
  expect(all.outcomes).toHaveLength(3);
  const first = all.changes[0];
  const firstBytes = first.type === 'set' ? Buffer.byteLength(first.key) + Buffer.byteLength(first.entry.valueJson) : 0;
  expect(firstBytes).toBeGreaterThan(120);

  const one = decide(state, ops, context, firstBytes);
  expect(one.outcomes).toHaveLength(1);
  expect(one.changes.map((c) => c.revision)).toEqual([6]);
  expect(one.revision).toBe(6);
  // Counted in UTF-16 units the first update would stay under this bound: it is bytes that count.
  expect(decide(state, ops, context, firstBytes - 80).outcomes).toHaveLength(1);
  expect(decide(state, ops, context, firstBytes + 1).outcomes).toHaveLength(2);
  expect(decide(state, ops, context, 1).outcomes).toHaveLength(1);
  // An op that fails writes nothing, so it does not end the batch.
  expect(decide(state, [update('missing', { a: 1 }), ...ops], context, firstBytes).outcomes).toHaveLength(2);
});

describe('merge patch updates', () => {
  const state = stateOf(4, { doc: entry(4, 2, 2, '{"a":1,"b":{"c":2,"d":3}}', 9) }, { 9: ['doc'] });

  test('an update merges into the current value, keeps the lease, and takes the next revision', () => {
    const d = decide(state, [update('doc', { a: null, b: { d: 4, e: 5 }, z: [1] }), update('doc', { a: 'back' })], context);
    expect(d.changes.map((c) => (c.type === 'set' ? JSON.parse(c.entry.valueJson) : c))).toEqual([
      { b: { c: 2, d: 4, e: 5 }, z: [1] },
      { b: { c: 2, d: 4, e: 5 }, z: [1], a: 'back' },
    ]);
    expect(d.outcomes[1]).toEqual({
      value: { key: 'doc', value: { b: { c: 2, d: 4, e: 5 }, z: [1], a: 'back' }, createRevision: 2, modRevision: 6, version: 4, lease: 9 },
    });
  });

  test('a missing key is KeyNotFoundError unless createIfMissing; compare-and-set and the value limit apply', () => {
    const d = decide(
      state,
      [update('new', { a: 1 }), update('new', { a: 1 }, true), update('doc', { x: 1 }, false, 3), update('doc', { big: 'x'.repeat(2000) })],
      context,
    );
    expect(d.outcomes[0]).toEqual({ error: new KeyNotFoundError('new') });
    expect(d.outcomes[1]).toMatchObject({ value: { key: 'new', value: { a: 1 }, version: 1, createRevision: 5 } });
    expect(d.outcomes[2]).toEqual({ error: new RevisionMismatchError('doc', 3, 4) });
    expect((d.outcomes[3] as { error: Error }).error).toBeInstanceOf(TooLargeError);
    expect(d.revision).toBe(5);
  });
});

describe('leases', () => {
  test('a grant does not move the revision; a set with a ttl grants a private lease in the same change', () => {
    const d = decide(stateOf(2, {}), [{ kind: 'grant', ttlMs: 5000, ...noop }, set('k', '1', undefined, 0, 3000)], context);
    expect(d.changes).toEqual([
      { type: 'lease-grant', id: 100, ttlMs: 5000, revision: 2 },
      { type: 'lease-grant', id: 101, ttlMs: 3000, revision: 3, private: true },
      { type: 'set', key: 'k', revision: 3, entry: entry(3, 3, 1, '1', 101), prev: undefined },
    ]);
    expect(d.outcomes[0]).toEqual({ value: { id: 100, ttlMs: 5000 } });
  });

  test("a key's private lease is revoked at the revision that takes the key off it, in the same batch; no other key may name it", () => {
    const state = stateOf(5, { k: entry(5, 5, 1, '1', 7), s: entry(4, 4, 1, '1', 8) }, { 7: ['k'], 8: ['s'] }, [7, 8]);
    const d = decide(state, [set('other', '1', undefined, 7), set('k', '2', undefined, 0, 3000), set('k', '3'), del('s')], context);
    expect(d.outcomes[0]).toEqual({ error: new LeasePrivateError(7, 'other') });
    expect(d.changes).toEqual([
      { type: 'lease-grant', id: 100, ttlMs: 3000, revision: 6, private: true },
      { type: 'set', key: 'k', revision: 6, entry: entry(6, 5, 2, '2', 100), prev: entry(5, 5, 1, '1', 7) },
      { type: 'lease-revoke', id: 7, revision: 6 },
      { type: 'set', key: 'k', revision: 7, entry: entry(7, 5, 3, '3', 0), prev: entry(6, 5, 2, '2', 100) },
      { type: 'lease-revoke', id: 100, revision: 7 },
      { type: 'delete', key: 's', revision: 8, prev: entry(4, 4, 1, '1', 8) },
      { type: 'lease-revoke', id: 8, revision: 8 },
    ]);
    // A lease revoked earlier in the batch is gone for the ops after it.
    const later = decide(state, [set('k', '2'), set('x', '1', undefined, 7)], context);
    expect(later.outcomes[1]).toEqual({ error: new LeaseNotFoundError(7) });
  });

  test('attaching to a lease that does not exist fails; one granted earlier in the batch exists', () => {
    const d = decide(
      stateOf(0, {}),
      [set('a', '1', undefined, 77), { kind: 'grant', ttlMs: 10, ...noop }, set('b', '1', undefined, 100)],
      context,
    );
    expect(d.outcomes[0]).toEqual({ error: new LeaseNotFoundError(77) });
    expect(d.outcomes[2]).toEqual({ value: { revision: 1 } });
  });

  test('revoking deletes all of the lease keys at one revision; expiring a lease already gone is nothing', () => {
    const state = stateOf(8, { x: entry(7, 7, 1, '1', 5), y: entry(8, 8, 1, '2', 5), z: entry(6) }, { 5: ['y', 'x'] });
    const d = decide(state, [{ kind: 'revoke', id: 5, ...noop }], context);
    expect(d.changes).toEqual([
      { type: 'lease-revoke', id: 5, revision: 9 },
      { type: 'delete', key: 'x', revision: 9, prev: entry(7, 7, 1, '1', 5) },
      { type: 'delete', key: 'y', revision: 9, prev: entry(8, 8, 1, '2', 5) },
    ]);
    expect(d.outcomes).toEqual([{ value: { deletedCount: 2, revision: 9 } }]);
    expect(decide(state, [{ kind: 'revoke', id: 6, ...noop }], context).outcomes).toEqual([{ error: new LeaseNotFoundError(6) }]);
    expect(decide(state, [{ kind: 'expire', ids: [6], ...noop }], context)).toEqual({
      changes: [],
      outcomes: [{ value: { deletedCount: 0, revision: 8 } }],
      revision: 8,
    });
  });
});

test('JSON equality ignores member order and number spelling, not types', () => {
  expect(jsonEqual({ a: [1, { b: null }], c: 'x' }, { c: 'x', a: [1.0, { b: null }] })).toBe(true);
  expect(jsonEqual({ a: 1 }, { a: 1, b: undefined as never })).toBe(false);
  expect(jsonEqual([1, 2], [2, 1])).toBe(false);
  expect(jsonEqual('1', 1)).toBe(false);
  expect(jsonEqual(null, {})).toBe(false);
});
