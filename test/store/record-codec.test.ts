import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import type { Change } from '../../src/store/change';
import {
  MAX_JOINED_TEXT,
  RecordType,
  crc32Of,
  emptyRecord,
  encodeBatch,
  newFileNonce,
  readRecord,
} from '../../src/store/file/record-codec';

describe('record codec', () => {
  test('crc32Of gives zlib.crc32 (the CRC docs/storage-format.md names) for any span', () => {
    const buf = randomBytes(4096);
    for (let start = 0; start < 40; start++) {
      for (const length of [0, 1, 7, 8, 9, 17, 33, 130, 1000, 4000]) {
        const end = Math.min(buf.length, start + length);
        expect(crc32Of(buf, start, end)).toBe(crc32(buf.subarray(start, end)));
      }
    }
  });

  test('a batch of any changes, ASCII or not, joined or not, reads back record by record: every key, value and field', () => {
    // Valid Unicode only (as the store admits): astral characters, non-ASCII, ASCII; empty keys stand for no text.
    const text = fc.string({ unit: fc.constantFrom('a', '/', 'é', '€', '\u{1f600}', '"', '0'), maxLength: 12 });
    const revisionish = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 2 ** 32 - 2, max: 2 ** 53 - 1 }));
    const entry = fc.record({
      valueJson: text.map((s) => JSON.stringify(s)),
      createRevision: revisionish,
      version: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      lease: fc.oneof(fc.constant(0), revisionish),
    });
    const change: fc.Arbitrary<Change> = fc.oneof(
      fc.record({ key: text.map((s) => `k${s}`), e: entry, revision: revisionish }).map(({ key, e, revision }) => ({
        type: 'set' as const,
        key,
        revision,
        entry: { ...e, createRevision: Math.min(e.createRevision, revision), modRevision: revision },
        prev: undefined,
      })),
      fc.record({ key: text.map((s) => `k${s}`), revision: revisionish }).map(({ key, revision }) => ({
        type: 'delete' as const,
        key,
        revision,
        prev: { valueJson: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 },
      })),
      fc
        .record({ prefix: text, revision: revisionish })
        .map(({ prefix, revision }) => ({ type: 'clear' as const, prefix, revision, removed: [] })),
      fc
        .record({ id: revisionish, ttlMs: fc.integer({ min: 1, max: 10 ** 9 }), revision: revisionish })
        .map((c) => ({ type: 'lease-grant' as const, ...c })),
      fc.record({ id: revisionish, revision: revisionish }).map((c) => ({ type: 'lease-revoke' as const, ...c })),
    );
    fc.assert(
      // Joined into one string, or (past the limit on joined text: 0 and 5 stand in for a batch of gigabytes) string by string.
      fc.property(fc.array(change, { minLength: 1, maxLength: 20 }), fc.constantFrom(MAX_JOINED_TEXT, 5, 0), (changes, maxJoined) => {
        const batch = encodeBatch(changes, 4096, newFileNonce(), maxJoined);
        const out = emptyRecord();
        expect(readRecord(batch, 0, batch.length, out)).toBeUndefined();
        expect(out.type).toBe(RecordType.Batch);
        expect(out.size + out.batchBytes).toBe(batch.length);
        let at = out.size;
        for (const c of changes) {
          expect(readRecord(batch, at, batch.length, out)).toBeUndefined();
          at += out.size;
          expect(out.revision).toBe(c.revision);
          if (c.type === 'set') {
            expect([out.type, out.key, out.valueJson, out.createRevision, out.version, out.lease]).toEqual([
              c.entry.lease === 0 ? RecordType.Set : RecordType.SetLeased,
              c.key,
              c.entry.valueJson,
              c.entry.createRevision,
              c.entry.version,
              c.entry.lease,
            ]);
          } else if (c.type === 'delete') {
            expect([out.type, out.key]).toEqual([RecordType.Delete, c.key]);
          } else if (c.type === 'clear') {
            expect([out.type, out.key]).toEqual([RecordType.Clear, c.prefix]);
          } else if (c.type === 'lease-grant') {
            expect([out.type, out.lease, out.ttlMs]).toEqual([RecordType.LeaseGrant, c.id, c.ttlMs]);
          } else {
            expect([out.type, out.lease]).toEqual([RecordType.LeaseRevoke, c.id]);
          }
        }
        expect(at).toBe(batch.length);
      }),
      { numRuns: 500 },
    );
  });
});
