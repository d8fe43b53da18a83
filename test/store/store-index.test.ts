import fc from 'fast-check';
import { type IndexEntry, StoreIndex, entryRecordBytes } from '../../src/store/file/store-index';

const keys = fc.constantFrom('a', 'a/1', 'a/2', 'b', 'b/\u{1f600}', 'b/\ufffd', 'c', '\u00e9');
type Op =
  { kind: 'put'; key: string; v: number } | { kind: 'remove'; key: string } | { kind: 'clear'; prefix: string } | { kind: 'snapshot' };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keys, v: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), key: keys }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), prefix: fc.constantFrom('', 'a', 'b/', 'z') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
);

const codePointOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('store index', () => {
  test('a snapshot reads the state it was taken at, whatever changes follow; live bytes stay exact', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const index = StoreIndex.empty();
        const model = new Map<string, IndexEntry>();
        let view: { snapshot: ReturnType<StoreIndex['snapshot']>; expected: Array<[string, IndexEntry]> } | undefined;
        let revision = 0;
        for (const o of ops) {
          if (o.kind === 'put') {
            const entry: IndexEntry = { valueJson: JSON.stringify(o.v), createRevision: 1, modRevision: ++revision, version: 1, lease: 0 };
            index.apply({ type: 'set', key: o.key, revision, entry, prev: index.get(o.key) });
            model.set(o.key, entry);
          } else if (o.kind === 'remove') {
            const prev = index.get(o.key);
            if (prev !== undefined) index.apply({ type: 'delete', key: o.key, revision: ++revision, prev });
            model.delete(o.key);
          } else if (o.kind === 'clear') {
            const removed = index.entriesUnder(o.prefix);
            expect(removed.map(([k]) => k)).toEqual([...model.keys()].filter((k) => k.startsWith(o.prefix)).sort(codePointOrder));
            if (removed.length > 0) index.apply({ type: 'clear', prefix: o.prefix, revision: ++revision, removed });
            for (const k of [...model.keys()]) if (k.startsWith(o.prefix)) model.delete(k);
          } else {
            if (view !== undefined) index.release(view.snapshot);
            view = { snapshot: index.snapshot(), expected: [...model].sort(([a], [b]) => codePointOrder(a, b)) };
          }
        }
        if (view !== undefined) expect([...view.snapshot.entries()]).toEqual(view.expected);
        expect(index.list('', undefined, Infinity).keys).toEqual([...model.keys()].sort(codePointOrder));
        let live = 0;
        for (const [k, e] of model) live += entryRecordBytes(k, e);
        expect(index.liveBytes).toBe(live);
      }),
      { numRuns: 2000 },
    );
  });
});
