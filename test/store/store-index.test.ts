import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { HistoryView } from '../../src/store/feed/history-window';
import { type IndexEntry, type IndexSnapshot, StoreIndex, entryRecordBytes } from '../../src/store/file/store-index';
import { BLOCK_TARGET_BYTES, BlockType, END_RECORD_SIZE } from '../../src/store/file/checkpoint-codec';
import { readCheckpoint } from '../../src/store/file/read-checkpoint';
import { FILE_HEADER_SIZE, FORMAT_VERSION, FRAME_SIZE } from '../../src/store/file/record-codec';
import { writeCheckpoint } from '../../src/store/file/write-checkpoint';
import { expectSameList } from '../support/expect-same-list';
import { tempDataDirs } from '../support/temp-dirs';

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

describe('store index over checkpoint tables', () => {
  const dirs = tempDataDirs();
  afterAll(() => dirs.cleanup());
  const noHistory: HistoryView = {
    oldestRevision: 1,
    size: 0,
    bytes: 0,
    at: () => undefined as never,
    revisionAt: () => undefined as never,
    packedAt: () => undefined,
    release: () => undefined,
  };

  type LayerOp = Op | { kind: 'checkpoint'; which: number } | { kind: 'release'; which: number };
  const layerOp: fc.Arbitrary<LayerOp> = fc.oneof(
    { weight: 8, arbitrary: op },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('checkpoint' as const), which: fc.nat(3) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), which: fc.nat(3) }) },
  );

  test('the checkpoint writer hands the event loop back every few hundred keys, deleted ones too, not only between blocks of a megabyte', async () => {
    // A block holds thousands of small entries, and the lookups of changed keys come before any block:
    // awaited only between blocks, a checkpoint of a million keys held writes and reads for long stalls (docs/storage-format.md).
    const dir = dirs.make();
    const index = StoreIndex.empty();
    let revision = 0;
    const put = (key: string): void => {
      const prev = index.get(key);
      const entry: IndexEntry = {
        valueJson: '1',
        createRevision: prev?.createRevision ?? revision + 1,
        modRevision: ++revision,
        version: 1,
        lease: 0,
      };
      index.apply({ type: 'set', key, revision, entry, prev });
    };
    for (let i = 0; i < 3000; i++) put(`k${i}`);
    const first = index.snapshot();
    index.replaceBase(first, (await writeCheckpoint(path.join(dir, 'c0'), first, noHistory, () => undefined)).table);
    // Half of them changed since, and as many created: the view is a table plus a layer.
    for (let i = 0; i < 3000; i += 2) put(`k${i}`);
    for (let i = 0; i < 1500; i++) put(`n${i}`);
    const view = index.snapshot();
    let calls = 0;
    const written = await writeCheckpoint(path.join(dir, 'c1'), view, noHistory, () => {
      calls++;
    });
    expect(written.table.count).toBe(4500);
    // One block of about 100 KB: after it, every 512 entries put in it, and every 1,024 keys looked at
    // (3,000 changed or created keys looked up in the table, then the table's 3,000 keys merged with them).
    expect(calls).toBe(1 + Math.floor(4500 / 512) + Math.floor(6000 / 1024));
    index.replaceBase(view, written.table);

    // A clear of most of the table: the deleted keys are neither copied nor encoded, and must pause too.
    const removed = index.entriesUnder('k');
    index.apply({ type: 'clear', prefix: 'k', revision: ++revision, removed });
    const cleared = index.snapshot();
    calls = 0;
    const left = await writeCheckpoint(path.join(dir, 'c2'), cleared, noHistory, () => {
      calls++;
    });
    expect(left.table.count).toBe(1500);
    expect(calls).toBe(1 + Math.floor(1500 / 512) + Math.floor((3000 + 4500) / 1024));
  });

  // Heavy by design (tens of thousands of entries compared six times): a loaded machine takes over a minute.
  test('unchanged table entries are copied a run at a time, across blocks and slabs, and the file and table hold exactly the view', async () => {
    // Runs end at a changed, deleted or created key, at a block of the old table or the new one, at a slab, and every 512 entries.
    const dir = dirs.make();
    const index = StoreIndex.empty();
    let revision = 0;
    const put = (key: string, valueJson: string, lease = 0): void => {
      const prev = index.get(key);
      const entry: IndexEntry = {
        valueJson,
        createRevision: prev?.createRevision ?? revision + 1,
        modRevision: ++revision,
        version: (prev?.version ?? 0) + 1,
        lease,
      };
      index.apply({ type: 'set', key, revision, entry, prev });
      model.set(key, valueJson);
    };
    // What the store holds, kept apart from the index: the oracle of each checkpoint's keys and values.
    const model = new Map<string, string>();
    const value = (i: number, w: number): string =>
      JSON.stringify({ i, w, pad: 'x'.repeat(i % 4999 === 0 ? 1_500_000 : 60 + (i % 17) * 40) });
    const key = (i: number): string => `k/${String(i).padStart(6, '0')}`;
    // Some keys with a lease (a larger entry): copied runs hold both kinds.
    for (let i = 0; i < 20_000; i++) put(key(i), value(i, 0), i % 10 === 3 ? 2 ** 40 + i : 0);
    // The next checkpoint copies from the table as written, or as read back from the file in slabs of 1.5 MiB (with carried blocks).
    const checkpoint = async (name: string, fromFile = false): Promise<void> => {
      const view = index.snapshot();
      const expected = [...view.entries()];
      const written = await writeCheckpoint(path.join(dir, name), view, noHistory, () => undefined);
      const inTable = Array.from({ length: written.table.count }, (_, i) => [written.table.key(i), written.table.entry(i)]);
      expectSameList(inTable, expected);
      // In code point order (UTF-8 byte order), as the model says.
      const byCodePoint = [...model].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expectSameList(
        inTable.map(([k, e]) => [k, (e as IndexEntry).valueJson]),
        byCodePoint,
      );
      // Blocks close at their target size, unless they hold one entry (the large values).
      const file = fs.readFileSync(path.join(dir, name));
      for (let at = FILE_HEADER_SIZE; at < file.length - END_RECORD_SIZE;) {
        const size = FRAME_SIZE + file.readUInt32LE(at + 4);
        if (file[at + 8] === BlockType.Keys && file.readUInt32LE(at + 17) > 1) expect(size).toBeLessThanOrEqual(BLOCK_TARGET_BYTES);
        at += size;
      }
      const fd = fs.openSync(path.join(dir, name), 'r');
      try {
        const layout = { slabBytes: 1536 * 1024, carryBytes: 1280 * 1024, readBytes: 512 * 1024, readsAhead: 1 };
        const loaded = await readCheckpoint(
          fd,
          name,
          fs.fstatSync(fd).size,
          { version: FORMAT_VERSION, baseRevision: view.revision },
          () => Promise.resolve(),
          layout,
        );
        expectSameList(
          Array.from({ length: loaded.table.count }, (_, i) => [loaded.table.key(i), loaded.table.entry(i)]),
          expected,
        );
        // The table the writer keeps (its runs copied from the old table) counts what a reader of the file counts.
        expect({ liveBytes: written.table.liveBytes, leased: written.table.leased }).toEqual({
          liveBytes: loaded.table.liveBytes,
          leased: loaded.table.leased,
        });
        expect(written.table.liveBytes).toBe(index.liveBytes);
        index.replaceBase(view, fromFile ? loaded.table : written.table);
      } finally {
        fs.closeSync(fd);
      }
    };
    await checkpoint('c0', true);
    // Nothing changed: the whole table goes out in runs.
    await checkpoint('c1');
    for (let i = 0; i < 20_000; i += 7) put(key(i), value(i, 1));
    for (let i = 3; i < 20_000; i += 11) {
      const prev = index.get(key(i));
      if (prev !== undefined) index.apply({ type: 'delete', key: key(i), revision: ++revision, prev });
      model.delete(key(i));
    }
    for (let i = 5; i < 20_000; i += 13) put(`${key(i)}+`, value(i, 2));
    await checkpoint('c2', true);
    await checkpoint('c3');
    // Created keys beyond ASCII, at scale: U+FF71 sorts before U+1F600 by code point but after it in UTF-16
    // (a surrogate pair starts with 0xD83D), so a merge that compared UTF-16 units would misplace them.
    for (let i = 1; i < 20_000; i += 9) for (const suffix of ['é', '\uff71', '\u{1f600}', '中']) put(`${key(i)}${suffix}`, value(i, 3));
    // A dense run of created keys between two table entries, crossing several pauses (every 512 entries) and a block.
    for (let j = 0; j < 1500; j++) put(`${key(10_000)}/${String(j).padStart(4, '0')}\u{1f600}`, value(j, 4));
    await checkpoint('c4', true);
    await checkpoint('c5');
  }, 180_000);

  test('a key read again and again from a checkpoint table reads its new state once a later checkpoint holds it', async () => {
    const dir = dirs.make();
    const index = StoreIndex.empty();
    let revision = 0;
    const put = (key: string, value: number): IndexEntry => {
      const prev = index.get(key);
      const entry: IndexEntry = {
        valueJson: String(value),
        createRevision: prev?.createRevision ?? revision + 1,
        modRevision: ++revision,
        version: (prev?.version ?? 0) + 1,
        lease: 0,
      };
      index.apply({ type: 'set', key, revision, entry, prev });
      return entry;
    };
    let files = 0;
    const checkpoint = async (): Promise<void> => {
      const view = index.snapshot();
      index.replaceBase(view, (await writeCheckpoint(path.join(dir, `c${files++}`), view, noHistory, () => undefined)).table);
      expect(index.layout).toMatchObject({ changedKeys: 0, layers: 1 });
    };
    put('a', 1);
    put('b', 1);
    await checkpoint();
    for (let i = 0; i < 3; i++) expect(index.get('a')?.valueJson).toBe('1');
    const second = put('a', 2);
    expect(index.get('a')).toEqual(second);
    await checkpoint();
    for (let i = 0; i < 3; i++) expect(index.get('a')).toEqual(second);
    for (let i = 0; i < 3; i++) expect(index.get('b')?.valueJson).toBe('1');
    index.apply({ type: 'delete', key: 'b', revision: ++revision, prev: index.get('b') as IndexEntry });
    expect(index.get('b')).toBeUndefined();
    await checkpoint();
    expect(index.get('b')).toBeUndefined();
    expect(index.get('a')).toEqual(second);
  });

  test('views taken and checkpoints written in any order: every view, get, list and live bytes match a plain map', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(layerOp, { maxLength: 50 }), async (ops) => {
        const dir = dirs.make();
        const index = StoreIndex.empty();
        const model = new Map<string, IndexEntry>();
        const sorted = (m: Map<string, IndexEntry>): Array<[string, IndexEntry]> => [...m].sort(([a], [b]) => codePointOrder(a, b));
        // Views in use (a compaction's or a backup's), with what each must read.
        const views: Array<{ view: IndexSnapshot; expected: Array<[string, IndexEntry]> }> = [];
        let revision = 0;
        let files = 0;
        for (const o of ops) {
          if (o.kind === 'put') {
            const prev = index.get(o.key);
            const entry: IndexEntry = {
              valueJson: JSON.stringify(o.v),
              createRevision: prev?.createRevision ?? revision + 1,
              modRevision: ++revision,
              version: (prev?.version ?? 0) + 1,
              lease: 0,
            };
            index.apply({ type: 'set', key: o.key, revision, entry, prev });
            model.set(o.key, entry);
          } else if (o.kind === 'remove') {
            const prev = index.get(o.key);
            if (prev !== undefined) index.apply({ type: 'delete', key: o.key, revision: ++revision, prev });
            model.delete(o.key);
          } else if (o.kind === 'clear') {
            const removed = index.entriesUnder(o.prefix);
            if (removed.length > 0) index.apply({ type: 'clear', prefix: o.prefix, revision: ++revision, removed });
            for (const k of [...model.keys()]) if (k.startsWith(o.prefix)) model.delete(k);
          } else if (o.kind === 'snapshot') {
            views.push({ view: index.snapshot(), expected: sorted(model) });
          } else if (views.length > 0) {
            const [{ view, expected }] = views.splice(o.which % views.length, 1);
            expect([...view.entries()]).toEqual(expected);
            if (o.kind === 'release') {
              index.release(view);
            } else {
              // What a compaction does: write the view as a checkpoint, then serve reads from its table.
              const written = await writeCheckpoint(path.join(dir, `c${files++}`), view, noHistory, () => undefined);
              expect(written.table.count).toBe(expected.length);
              index.replaceBase(view, written.table);
            }
          }
          for (const key of ['a', 'a/1', 'b/\u{1f600}', 'c']) expect(index.get(key)).toEqual(model.get(key));
        }
        for (const { view, expected } of views) expect([...view.entries()]).toEqual(expected);
        expect(index.entriesUnder('')).toEqual(sorted(model));
        expect(index.list('b', undefined, Infinity).keys).toEqual(
          sorted(model)
            .map(([k]) => k)
            .filter((k) => k.startsWith('b')),
        );
        expect(index.list('', 'a/1', 2).keys).toEqual(
          sorted(model)
            .map(([k]) => k)
            .filter((k) => codePointOrder(k, 'a/1') > 0)
            .slice(0, 2),
        );
        expect(index.size).toBe(model.size);
        let live = 0;
        for (const [k, e] of model) live += entryRecordBytes(k, e);
        expect(index.liveBytes).toBe(live);
      }),
      { numRuns: 150 },
    );
  });
});

test('leaseIdsAfter: the smallest lease ids above a point, in order, and whether more follow, as a sort of them all would give', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 2 ** 48 }), { maxLength: 300 }),
      fc.integer({ min: 0, max: 2 ** 48 }),
      fc.integer({ min: 0, max: 40 }),
      (ids, after, count) => {
        const index = StoreIndex.empty();
        for (const id of ids) index.apply({ type: 'lease-grant', id, ttlMs: 1000, revision: 0 });
        const above = ids.filter((id) => id > after).sort((a, b) => a - b);
        expect(index.leaseIdsAfter(after, count)).toEqual({ ids: above.slice(0, count), more: above.length > count });
      },
    ),
  );
});
