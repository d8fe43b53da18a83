/**
 * decide() is pure: ops and the committed state in, changes and outcomes
 * out. Tested here without a disk, a loop or an index.
 */
import type { StoredEntry } from '../../src/store/change';
import { RevisionMismatchError } from '../../src/store/errors';
import { type DecideState, type WriteOp, decide } from '../../src/store/file/decide';

const noop = { resolve: () => undefined, reject: () => undefined };
const entry = (modRevision: number, createRevision = modRevision, version = 1, valueJson = '1'): StoredEntry => ({
  valueJson,
  createRevision,
  modRevision,
  version,
});

function stateOf(revision: number, entries: Record<string, StoredEntry>): DecideState {
  return {
    revision,
    get: (key) => entries[key],
    entriesUnder: (prefix) =>
      Object.entries(entries)
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : 1)),
  };
}

const set = (key: string, valueJson: string, expected?: number): WriteOp => ({
  kind: 'set',
  key,
  keyBytes: Buffer.byteLength(key),
  valueJson,
  valueBytes: Buffer.byteLength(valueJson),
  expected,
  ...noop,
});
const del = (key: string, expected?: number): WriteOp => ({ kind: 'delete', key, keyBytes: Buffer.byteLength(key), expected, ...noop });
const clear = (prefix: string): WriteOp => ({ kind: 'clear', prefix, prefixBytes: Buffer.byteLength(prefix), ...noop });

test('each op that changes something takes the next revision; later ops see earlier ones in the batch', () => {
  const state = stateOf(10, { a: entry(4, 2, 3) });
  const d = decide(state, [set('a', '"x"'), set('b', '2'), set('a', '"y"'), del('b')]);
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
  const d = decide(state, [set('a', '1', 5), set('a', '2', 5), set('new', '1', 0), set('new', '1', 0), del('gone', 0), del('gone', 3)]);
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
  const d = decide(state, [clear('a/')]);
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
  const none = decide(state, [clear('zzz')]);
  expect(none).toEqual({ changes: [], outcomes: [{ value: { deletedCount: 0, revision: 3 } }], revision: 3 });
});

test('deleting a missing key is no change', () => {
  expect(decide(stateOf(2, {}), [del('x')])).toEqual({ changes: [], outcomes: [{ value: { deleted: false, revision: 2 } }], revision: 2 });
});
