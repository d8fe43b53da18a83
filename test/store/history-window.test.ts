import fc from 'fast-check';
import { keyChangeBytes, type KeyChange, type StoredEntry } from '../../src/store/change';
import { HistoryWindow, PACK_CHUNK, PACK_CHUNK_BYTES, type PackedChanges } from '../../src/store/feed/history-window';
import { changeBytesAt, changeSize, decodeChangeAt, encodeChange } from '../../src/store/file/checkpoint-codec';
import { NUMBERS, PackedColumns, WORDS, decodeColumns, encodedRangeBytes } from '../../src/store/file/packed-columns';
import { MAX_JOINED_CHARS, PackedHistory, historyPacker, packHistory } from '../../src/store/file/packed-history';

// Keys and values with multi-byte UTF-8 (and a lone surrogate's replacement) as well as ASCII.
const text = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('é', 'ключ', '🔑/x', 'a\u0000b'));
const entry = (revision: number): fc.Arbitrary<StoredEntry> =>
  fc.record({
    valueJson: text.map((s) => JSON.stringify(s)),
    createRevision: fc.integer({ min: 1, max: revision }),
    modRevision: fc.constant(revision),
    version: fc.integer({ min: 1, max: 2 ** 31 }),
    lease: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  });

/** Changes of strictly increasing revisions: sets (with or without a previous entry), deletes and, rarely, clears. */
function changes(minLength: number, maxLength: number): fc.Arbitrary<KeyChange[]> {
  return fc.array(fc.integer({ min: 0, max: 20 }), { minLength, maxLength }).chain((kinds) =>
    fc.tuple(
      ...kinds.map((kind, i): fc.Arbitrary<KeyChange> => {
        const revision = 10 + i;
        if (kind === 0) {
          return fc.record({
            type: fc.constant('clear' as const),
            prefix: fc.string({ maxLength: 3 }),
            revision: fc.constant(revision),
            removed: fc.array(fc.tuple(text, entry(revision - 1)), { minLength: 1, maxLength: 3 }),
          });
        }
        if (kind < 5) {
          return fc.record({ type: fc.constant('delete' as const), key: text, revision: fc.constant(revision), prev: entry(revision - 1) });
        }
        return fc.record({
          type: fc.constant('set' as const),
          key: text,
          revision: fc.constant(revision),
          entry: entry(revision),
          prev: fc.option(entry(revision - 1), { nil: undefined }),
        });
      }),
    ),
  );
}

function encoded(change: KeyChange): Buffer {
  const buf = Buffer.alloc(changeSize(change));
  encodeChange(buf, 0, change);
  return buf;
}

describe('packed history', () => {
  test('packHistory packs a chunk that decodes back to each change: sets and deletes as columns, a chunk with a Clear byte for byte as encodeChange writes it', () => {
    fc.assert(
      fc.property(changes(1, 40), fc.boolean(), (list, withoutClears) => {
        const chunk = withoutClears ? list.filter((c) => c.type !== 'clear') : list;
        if (chunk.length === 0) return;
        const packed = packHistory(chunk);
        expect(packed.count).toBe(chunk.length);
        expect(packed).toBeInstanceOf(chunk.some((c) => c.type === 'clear') ? PackedHistory : PackedColumns);
        for (let i = 0; i < chunk.length; i++) {
          if (packed instanceof PackedHistory) {
            const { buf, start, end } = packed.run(i, 0, 1);
            expect(buf.subarray(start, end)).toEqual(encoded(chunk[i]));
          }
          expect(packed.revisionAt(i)).toBe(chunk[i].revision);
          expect(packed.changeAt(i)).toEqual(decodeChangeAt(encoded(chunk[i]), 0));
          expect(packed.bytesAt(i)).toBe(keyChangeBytes(chunk[i]));
          // A checkpoint's HISTORY record measured off its bytes, as read-checkpoint.ts does: the same.
          expect(changeBytesAt(encoded(chunk[i]), 0)).toBe(keyChangeBytes(chunk[i]));
        }
      }),
      { numRuns: 300 },
    );
  });

  test("a range of packed columns, as a checkpoint's HISTORY_COLUMNS block, reads back the same changes; a damaged one is refused", () => {
    fc.assert(
      fc.property(
        changes(1, 40).map((list) => list.filter((c) => c.type !== 'clear')),
        fc.nat(),
        fc.nat(),
        (chunk, a, b) => {
          if (chunk.length === 0) return;
          const packed = packHistory(chunk) as PackedColumns;
          const from = a % chunk.length;
          const to = from + 1 + (b % (chunk.length - from));
          const body = Buffer.alloc(encodedRangeBytes(packed, from, to) + 3);
          // At an odd offset, as a block lies in the slab a checkpoint is read into.
          expect(packed.encodeRange(from, to, body, 3)).toBe(body.length);
          const revisions = { after: 1, atMost: chunk[chunk.length - 1].revision };
          const read = decodeColumns(body, 3, body.length, to - from, revisions);
          if (typeof read === 'string') throw new Error(read);
          for (let i = from; i < to; i++) {
            expect(read.changeAt(i - from)).toEqual(packed.changeAt(i));
            expect(read.bytesAt(i - from)).toBe(packed.bytesAt(i));
          }
          expect(decodeColumns(body, 3, body.length - 1, to - from, revisions)).toBe('HISTORY_COLUMNS block of the wrong size');
          expect(decodeColumns(body, 3, body.length, to - from, { after: 1, atMost: chunk[from].revision - 1 })).toBe(
            'history change newer than the checkpoint',
          );
          const kind = Buffer.from(body);
          kind.writeUInt32LE(7, 3 + 4 + (to - from) * 8 * NUMBERS + 4);
          expect(decodeColumns(kind, 3, body.length, to - from, revisions)).toBe('history change of kind 7');
          const shifted = Buffer.from(body);
          shifted.writeUInt32LE(1, 3 + 4 + (to - from) * 8 * NUMBERS);
          expect(decodeColumns(shifted, 3, body.length, to - from, revisions)).toBe('HISTORY_COLUMNS text out of place');
          // What a kind has not got must be zeros: a delete's create revision, a new key's previous version.
          const numbersAt = (j: number, k: number): number => 3 + 4 + ((j - from) * NUMBERS + k) * 8;
          const wordsAt = (j: number, k: number): number => 3 + 4 + (to - from) * 8 * NUMBERS + ((j - from) * WORDS + k) * 4;
          const deleted = chunk.findIndex((c, j) => j >= from && j < to && c.type === 'delete');
          if (deleted >= 0) {
            const damaged = Buffer.from(body);
            damaged.writeDoubleLE(1, numbersAt(deleted, 1));
            expect(decodeColumns(damaged, 3, body.length, to - from, revisions)).toBe('history delete with a value');
          }
          const created = chunk.findIndex((c, j) => j >= from && j < to && c.type === 'set' && c.prev === undefined);
          if (created >= 0) {
            const damaged = Buffer.from(body);
            damaged.writeUInt32LE(1, wordsAt(created, 6));
            expect(decodeColumns(damaged, 3, body.length, to - from, revisions)).toBe('history set of a new key with a previous entry');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a window that packs reads the same changes, revisions and positions as one that does not, and its views stay put', () => {
    // Long enough for several packed chunks, and the newest ones not packed.
    const n = 5 * PACK_CHUNK + 17;
    fc.assert(
      fc.property(
        changes(3 * PACK_CHUNK + 1, n),
        fc.oneof(fc.integer({ min: 1, max: n }), fc.integer({ min: 3 * PACK_CHUNK, max: n })),
        fc.integer({ min: 0, max: n - 1 }),
        (list, maxChanges, viewAfter) => {
          const limits = { maxChanges, maxBytes: 64 * 1024 * 1024 };
          const packedWindow = new HistoryWindow(limits, 9);
          packedWindow.packWith(packHistory);
          const plain = new HistoryWindow(limits, 9);
          let view: ReturnType<HistoryWindow['view']> | undefined;
          let viewChanges: KeyChange[] = [];
          for (let i = 0; i < list.length; i++) {
            packedWindow.push([list[i]]);
            plain.push([list[i]]);
            if (i === viewAfter) {
              view = packedWindow.view();
              viewChanges = Array.from({ length: plain.size }, (_, p) => plain.at(p));
            }
          }
          expect(packedWindow.size).toBe(plain.size);
          expect(packedWindow.oldestRevision).toBe(plain.oldestRevision);
          expect(packedWindow.byteSize).toBeGreaterThan(0);
          // Packed, a change weighs what it did as an object (multi-byte text included): the byte limit holds as many.
          expect(packedWindow.byteSize).toBe(plain.byteSize);
          // What the window counts of the changes it holds, however many it took and let go.
          const held = new HistoryWindow({ maxChanges: n, maxBytes: 1 << 30 }, 9);
          held.push(Array.from({ length: plain.size }, (_, p) => plain.at(p)));
          expect(plain.byteSize).toBe(held.byteSize);
          for (let p = 0; p < plain.size; p++) {
            expect(packedWindow.revisionAt(p)).toBe(plain.revisionAt(p));
            expect(packedWindow.at(p)).toEqual(decodeChangeAt(encoded(plain.at(p)), 0));
          }
          const probe = list[Math.floor(list.length / 2)].revision;
          expect(packedWindow.positionOf(probe)).toBe(plain.positionOf(probe));
          if (view !== undefined) {
            expect(view.size).toBe(viewChanges.length);
            for (let p = 0; p < view.size; p++) expect(view.at(p)).toEqual(decodeChangeAt(encoded(viewChanges[p]), 0));
          }
        },
      ),
      { numRuns: 15, endOnFailure: true },
    );
  });

  test('a window that packs far more chunks than it keeps (its lists of chunks trimmed again and again) reads the same as one that does not, and views taken before a trim stay put', () => {
    const entry = (revision: number, i: number): StoredEntry => ({
      valueJson: JSON.stringify('v'.repeat(i % 37) + 'é'.repeat(i % 5)),
      createRevision: 1,
      modRevision: revision,
      version: 1,
      lease: 0,
    });
    // Now and then several changes in one revision, as a transaction makes.
    const revisionOf = (revision: number, i: number): KeyChange[] =>
      Array.from({ length: i % 11 === 0 ? 3 : 1 }, (_, j) => ({
        type: 'set' as const,
        key: `k${i % 500}-${j}`,
        revision,
        entry: entry(revision, i),
        prev: i % 3 === 0 ? entry(revision - 1, i) : undefined,
      }));
    for (const maxChanges of [700, 3000]) {
      const limits = { maxChanges, maxBytes: 1 << 30 };
      const packedWindow = new HistoryWindow(limits, 9);
      packedWindow.packWith(packHistory);
      const plain = new HistoryWindow(limits, 9);
      const views: Array<{ view: ReturnType<HistoryWindow['view']>; changes: KeyChange[] }> = [];
      // 200 chunks' worth: the list of packed chunks is trimmed once more than 64 are gone.
      for (let i = 0; i < 200 * PACK_CHUNK; i++) {
        const changes = revisionOf(10 + i, i);
        packedWindow.push(changes);
        plain.push(changes);
        if (i % 4099 === 0) views.push({ view: packedWindow.view(), changes: Array.from({ length: plain.size }, (_, p) => plain.at(p)) });
        if (i % 997 === 0) {
          expect(packedWindow.size).toBe(plain.size);
          expect(packedWindow.byteSize).toBe(plain.byteSize);
          expect(packedWindow.oldestRevision).toBe(plain.oldestRevision);
        }
      }
      for (let p = 0; p < plain.size; p++) {
        expect(packedWindow.revisionAt(p)).toBe(plain.revisionAt(p));
        if (p % 7 === 0) expect(packedWindow.at(p)).toEqual(decodeChangeAt(encoded(plain.at(p)), 0));
      }
      expect(views.length).toBeGreaterThan(10);
      for (const { view, changes } of views) {
        expect(view.size).toBe(changes.length);
        for (let p = 0; p < view.size; p += 7) {
          expect(view.revisionAt(p)).toBe(changes[p].revision);
          expect(view.at(p)).toEqual(decodeChangeAt(encoded(changes[p]), 0));
        }
      }
    }
  }, 120_000);

  test('a chunk of large values is packed in several, each within PACK_CHUNK_BYTES, and reads back the same', () => {
    const window = new HistoryWindow({ maxChanges: 100_000, maxBytes: 1 << 30 }, 0);
    window.packWith(packHistory);
    const big = (r: number): StoredEntry => ({
      valueJson: JSON.stringify(`${r}:${'é'.repeat(100_000)}`),
      createRevision: 1,
      modRevision: r,
      version: r,
      lease: 0,
    });
    const pushed: KeyChange[] = [];
    for (let r = 1; r <= 2 * PACK_CHUNK + 100; r++) {
      const change: KeyChange = { type: 'set', key: `k${r % 7}`, revision: r, entry: big(r), prev: r > 7 ? big(r - 7) : undefined };
      pushed.push(change);
      window.push([change]);
    }
    const view = window.view();
    const segments = new Set<unknown>();
    for (let p = 0; p < view.size; p++) {
      const packed = view.packedAt(p);
      if (packed !== undefined) segments.add(packed.packed);
    }
    expect(segments.size).toBeGreaterThan(2);
    // Each change counts at least 200,000 bytes as an object (2 per UTF-16 unit of its value): so many fill a chunk.
    for (const segment of segments as Set<PackedChanges>)
      expect(segment.count).toBeLessThanOrEqual(Math.ceil(PACK_CHUNK_BYTES / 200_000) + 1);
    for (let p = 0; p < view.size; p++) expect(view.at(p)).toEqual(pushed[p]);
  });

  test('a chunk whose text would make too long a string is packed string by string, and reads back the same', () => {
    const value = JSON.stringify('v'.repeat(MAX_JOINED_CHARS));
    const chunk: KeyChange[] = [
      {
        type: 'set',
        key: 'huge',
        revision: 5,
        entry: { valueJson: value, createRevision: 5, modRevision: 5, version: 1, lease: 0 },
        prev: undefined,
      },
    ];
    const packed = packHistory(chunk);
    expect(packed).toBeInstanceOf(PackedHistory);
    expect(packed.changeAt(0)).toEqual(chunk[0]);
  });

  test('a chunk that fails to pack stays in the window: no change is lost from it', () => {
    const window = new HistoryWindow({ maxChanges: 100_000, maxBytes: 1 << 30 }, 0);
    window.packWith(() => {
      throw new RangeError('Invalid string length');
    });
    const entryAt = (r: number): StoredEntry => ({ valueJson: '1', createRevision: r, modRevision: r, version: 1, lease: 0 });
    const push = (r: number): void => window.push([{ type: 'set', key: `k${r}`, revision: r, entry: entryAt(r), prev: undefined }]);
    for (let r = 1; r < 2 * PACK_CHUNK; r++) push(r);
    expect(() => push(2 * PACK_CHUNK)).toThrow('Invalid string length');
    expect([window.size, window.oldestRevision]).toEqual([2 * PACK_CHUNK, 1]);
    for (let p = 0; p < window.size; p++) expect(window.revisionAt(p)).toBe(p + 1);
  });

  test('only changes older than the newest PACK_CHUNK are packed', () => {
    const window = new HistoryWindow({ maxChanges: 100_000, maxBytes: 1 << 30 }, 0);
    window.packWith(packHistory);
    const entryAt = (r: number): StoredEntry => ({ valueJson: '1', createRevision: r, modRevision: r, version: 1, lease: 0 });
    for (let r = 1; r <= 2 * PACK_CHUNK; r++) window.push([{ type: 'set', key: `k${r}`, revision: r, entry: entryAt(r), prev: undefined }]);
    const view = window.view();
    expect(view.packedAt(0)).toBeDefined();
    expect(view.packedAt(PACK_CHUNK - 1)).toBeDefined();
    expect(view.packedAt(PACK_CHUNK)).toBeUndefined();
    expect(view.at(0)).toEqual({ type: 'set', key: 'k1', revision: 1, entry: entryAt(1), prev: undefined });
  });

  test('a window that reuses the buffers of chunks it let go of reads the same as one that does not; an open view keeps what it saw, and the chunks let go of meanwhile are reused only once it is released', () => {
    // Values of changing sizes, some multi-byte: chunks of different sizes take buffers of each other's.
    const entry = (revision: number, i: number): StoredEntry => ({
      valueJson: JSON.stringify(`${i}:${'v'.repeat((i * 7) % 300)}${i % 13 === 0 ? 'é' : ''}`),
      createRevision: 1,
      modRevision: revision,
      version: 1 + (i % 9),
      lease: 0,
    });
    const changeAt = (i: number): KeyChange =>
      i % 10 === 9
        ? { type: 'delete', key: `k${i % 300}`, revision: 10 + i, prev: entry(9 + i, i + 1000) }
        : {
            type: 'set',
            key: `k${i % 300}`,
            revision: 10 + i,
            entry: entry(10 + i, i),
            prev: i % 2 === 0 ? entry(9 + i, i + 1000) : undefined,
          };
    const limits = { maxChanges: 3 * PACK_CHUNK, maxBytes: 1 << 30 };
    const packer = historyPacker();
    let recycled = 0;
    const packedWindow = new HistoryWindow(limits, 9);
    packedWindow.packWith(packer.pack, (packed) => {
      recycled++;
      packer.recycle(packed);
    });
    const plain = new HistoryWindow(limits, 9);
    const expectSame = (window: { size: number; at(p: number): KeyChange }, changes: KeyChange[]): void => {
      expect(window.size).toBe(changes.length);
      for (let p = 0; p < changes.length; p++) expect(window.at(p)).toEqual(decodeChangeAt(encoded(changes[p]), 0));
    };
    let i = 0;
    const pushChunks = (chunks: number): void => {
      for (const end = i + chunks * PACK_CHUNK; i < end; i++) {
        packedWindow.push([changeAt(i)]);
        plain.push([changeAt(i)]);
      }
    };
    pushChunks(8);
    expect(recycled).toBeGreaterThan(0);
    for (let round = 0; round < 4; round++) {
      // A view (as a checkpoint takes), then the window moves on past everything it holds.
      const view = packedWindow.view();
      const seen = Array.from({ length: plain.size }, (_, p) => plain.at(p));
      const before = recycled;
      pushChunks(6);
      expect(recycled).toBe(before);
      expectSame(
        packedWindow,
        Array.from({ length: plain.size }, (_, p) => plain.at(p)),
      );
      expectSame(view, seen);
      view.release();
      // Every chunk let go of while the view was open comes back now, and new chunks reuse their buffers.
      expect(recycled).toBeGreaterThanOrEqual(before + 5);
      view.release();
      pushChunks(3);
      expectSame(
        packedWindow,
        Array.from({ length: plain.size }, (_, p) => plain.at(p)),
      );
    }
    // Two views: none is reused until both are released.
    const first = packedWindow.view();
    const second = packedWindow.view();
    const seen = Array.from({ length: plain.size }, (_, p) => plain.at(p));
    const before = recycled;
    pushChunks(6);
    first.release();
    expect(recycled).toBe(before);
    pushChunks(2);
    expectSame(second, seen);
    second.release();
    expect(recycled).toBeGreaterThan(before);
    pushChunks(6);
    expectSame(
      packedWindow,
      Array.from({ length: plain.size }, (_, p) => plain.at(p)),
    );
  });
});
