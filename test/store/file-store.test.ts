import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { CorruptDataError, LockedError, StoreClosedError, StoreFailedError } from '../../src/store/errors';
import { type FileStore, type FileStoreOptions, openFileStore } from '../../src/store/file';
import {
  BATCH_RECORD_SIZE,
  FILE_HEADER_SIZE,
  RecordType,
  checkRecord,
  emptyRecord,
  writeBatchRecord,
} from '../../src/store/file/record-codec';
import type { JsonValue } from '../../src/store/key-value-store';
import { runStoreContract } from './store-contract';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

runStoreContract('file engine (fsync=always)', () => openFileStore({ dataDir: dirs.make() }));
runStoreContract(
  'file engine (fsync=never, small limits)',
  () => openFileStore({ dataDir: dirs.make(), fsync: 'never', maxKeyBytes: 64, maxValueBytes: 256 }),
  {
    maxKeyBytes: 64,
    maxValueBytes: 256,
  },
);

/** A pino logger that keeps its lines in memory, to assert on warnings. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

function logFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort();
}

/** Where each batch of a log starts and ends, and where its records start (docs/storage-format.md). */
function batchesOf(bytes: Buffer): Array<{ start: number; end: number; records: number[] }> {
  const batches: Array<{ start: number; end: number; records: number[] }> = [];
  let at = FILE_HEADER_SIZE;
  while (at < bytes.length) {
    expect(bytes[at + 8]).toBe(RecordType.Batch);
    const end = at + BATCH_RECORD_SIZE + bytes.readUInt32LE(at + 17);
    const records: number[] = [];
    for (let r = at + BATCH_RECORD_SIZE; r < end; r += 8 + bytes.readUInt32LE(r + 4)) records.push(r);
    batches.push({ start: at, end, records });
    at = end;
  }
  return batches;
}

function dataBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) if (/\.(log|snap|tmp)$/.test(f)) n += fs.statSync(path.join(dir, f)).size;
  return n;
}

async function dump(store: FileStore): Promise<Array<[string, unknown, number, number, number]>> {
  const out: Array<[string, unknown, number, number, number]> = [];
  for (const key of (await store.listKeys()).keys) {
    const e = await store.get(key);
    if (e) out.push([key, e.value, e.createRevision, e.modRevision, e.version]);
  }
  return out;
}

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
              });
            } else {
              await store.close();
              store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 256, deadToLiveRatio: 0.5 } });
            }
            expect(store.revision).toBe(revision);
          }
          for (const [k, m] of model) expect(await store.get(k)).toEqual({ key: k, ...m });
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

describe('file engine: damaged logs', () => {
  async function writeSome(dataDir: string, n: number): Promise<void> {
    const store = await openFileStore({ dataDir });
    for (let i = 0; i < n; i++) await store.set(`key-${i}`, { i, pad: 'x'.repeat(20) });
    await store.close();
  }

  test('a torn final record is dropped, the rest recovered, and a warning names file and offset', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 10);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 7);
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({ dataDir, logger });
    expect((await store.listKeys()).keys).toHaveLength(9);
    expect(await store.get('key-8')).toMatchObject({ value: { i: 8 } });
    expect(await store.get('key-9')).toBeUndefined();
    const warning = lines.find((l) => l.level === 40 && String(l.msg).includes('torn'));
    expect(warning).toMatchObject({ file });
    expect(typeof warning?.offset).toBe('number');
    expect(String(warning?.msg)).toContain(`offset ${String(warning?.offset)}`);
    // Truncated on disk, so appends continue a clean log.
    expect(fs.statSync(file).size).toBe(warning?.offset);
    expect(await store.set('after', 1)).toEqual({ revision: 10 });
    await store.close();
    const again = await openFileStore({ dataDir });
    expect(await again.get('after')).toMatchObject({ modRevision: 10 });
    await again.close();
  });

  test('garbage appended after the last record is dropped', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 5);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.from('\x10\x00\x00\x00\x12\x00\x00\x00garbage garbage garbage', 'latin1'));
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({ dataDir, logger });
    expect((await store.listKeys()).keys).toHaveLength(5);
    expect(lines.some((l) => l.level === 40 && l.offset === size)).toBe(true);
    await store.close();
  });

  test('zeros at the tail (a crash after the file grew, before data landed) are dropped', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 5);
    fs.appendFileSync(path.join(dataDir, logFiles(dataDir)[0]), Buffer.alloc(4096));
    const store = await openFileStore({ dataDir });
    expect((await store.listKeys()).keys).toHaveLength(5);
    await store.close();
  });

  test('a flipped byte before the tail refuses to open, naming file and offset', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 10);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    const batches = batchesOf(bytes);
    expect(batches).toHaveLength(10); // one awaited set per batch
    const fifthRecord = batches[4].records[0];
    bytes[fifthRecord + 40] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptDataError);
    expect(err).toMatchObject({ code: 'CORRUPT', file, offset: fifthRecord });
    expect((err as Error).message).toContain(`offset ${fifthRecord}`);
    expect((err as Error).message).toContain(file);
    // Nothing was truncated, and the lock was released: the same error again.
    expect(fs.readFileSync(file)).toEqual(bytes);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({ code: 'CORRUPT', offset: fifthRecord });
  });

  test('a flipped length field mid-log is not mistaken for a torn tail', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 10);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    const recordSize = (bytes.length - FILE_HEADER_SIZE) / 10;
    const third = FILE_HEADER_SIZE + 2 * recordSize;
    bytes[third + 6] = 0x7f; // body length now far beyond the end of the file
    fs.writeFileSync(file, bytes);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({ code: 'CORRUPT', offset: third });
  });

  test('a damaged file header refuses to open', async () => {
    const dataDir = dirs.make();
    await writeSome(dataDir, 3);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    bytes[13] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({ code: 'CORRUPT', offset: 0 });
  });
});

describe('file engine: power loss inside a batch', () => {
  /** Three batches of 20 sets (a/*, b/*, c/*): each Promise.all is queued at once, so it commits as one batch. */
  async function writeThreeBatches(dataDir: string, fsync: 'always' | 'never'): Promise<{ file: string; bytes: Buffer }> {
    const store = await openFileStore({ dataDir, fsync });
    for (const space of ['a', 'b', 'c']) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`${space}/${i}`, { i, pad: 'x'.repeat(40) })));
    }
    await store.close();
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    const batches = batchesOf(bytes);
    expect(batches.map((b) => b.records.length)).toEqual([20, 20, 20]);
    return { file, bytes };
  }

  /** Zeros records 5..9 of a batch, as if those pages never reached the disk while later ones did. */
  function losePagesInside(bytes: Buffer, batch: { records: number[] }): number {
    const from = batch.records[5];
    bytes.fill(0, from, batch.records[10]);
    return from;
  }

  test('fsync=always: damage inside the final batch with its later records intact is a torn tail: the batch is dropped, earlier ones kept', async () => {
    const dataDir = dirs.make();
    const { file, bytes } = await writeThreeBatches(dataDir, 'always');
    const last = batchesOf(bytes)[2];
    losePagesInside(bytes, last);
    fs.writeFileSync(file, bytes);
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({ dataDir, logger });
    expect((await store.listKeys({ prefix: 'a/' })).keys).toHaveLength(20);
    expect((await store.listKeys({ prefix: 'b/' })).keys).toHaveLength(20);
    // None of the batch: not even its records before the damage, nor its intact ones after it.
    expect((await store.listKeys({ prefix: 'c/' })).keys).toEqual([]);
    expect(store.revision).toBe(40);
    const warning = lines.find((l) => l.level === 40 && String(l.msg).includes('torn'));
    expect(warning).toMatchObject({ file, offset: last.start, damageOffset: last.records[5] });
    expect(String(warning?.msg)).toContain(`offset ${last.start}`);
    expect(fs.statSync(file).size).toBe(last.start);
    expect(await store.set('after', 1)).toEqual({ revision: 41 });
    await store.close();
    const again = await openFileStore({ dataDir });
    expect(again.revision).toBe(41);
    expect((await again.listKeys()).keys).toHaveLength(41);
    await again.close();
  });

  test('fsync=always: the same damage in a batch that a later batch follows refuses to open, naming file and offset', async () => {
    const dataDir = dirs.make();
    const { file, bytes } = await writeThreeBatches(dataDir, 'always');
    const middle = batchesOf(bytes)[1];
    const damageAt = losePagesInside(bytes, middle);
    fs.writeFileSync(file, bytes);
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptDataError);
    expect(err).toMatchObject({ code: 'CORRUPT', file, offset: damageAt });
    expect((err as Error).message).toContain(`offset ${damageAt}`);
    expect(fs.readFileSync(file)).toEqual(bytes);
  });

  test('fsync=always: a lost BATCH record of the final batch is a torn tail too', async () => {
    const dataDir = dirs.make();
    const { file, bytes } = await writeThreeBatches(dataDir, 'always');
    const last = batchesOf(bytes)[2];
    bytes.fill(0, last.start, last.records[0]);
    fs.writeFileSync(file, bytes);
    const store = await openFileStore({ dataDir });
    expect(store.revision).toBe(40);
    expect((await store.listKeys({ prefix: 'c/' })).keys).toEqual([]);
    await store.close();
  });

  test('a BATCH record a client forged inside a key (valid CRC, huge synced-through, wrong nonce) cannot turn a torn tail into a refusal to open', async () => {
    const dataDir = dirs.make();
    // A correctly framed and CRC'd BATCH record claiming the whole log is durable, all of
    // whose bytes are ASCII so that it survives as UTF-8 key text. Only the nonce is wrong.
    const forged = Buffer.alloc(BATCH_RECORD_SIZE);
    for (let attempt = 0; ; attempt++) {
      const nonce = Buffer.from(Array.from({ length: 8 }, (_, i) => (attempt * 7 + i * 31) & 0x7f));
      writeBatchRecord(forged, 0, 1 + (attempt >> 16), 100, 2 ** 40, nonce);
      if (forged.every((b) => b < 0x80)) break;
    }
    expect(checkRecord(forged, 0, forged.length, emptyRecord(), true)).toBeUndefined();
    const evilKey = `evil/${forged.toString('latin1')}`;
    expect(Buffer.from(evilKey, 'utf8').equals(Buffer.concat([Buffer.from('evil/'), forged]))).toBe(true);

    const store = await openFileStore({ dataDir, fsync: 'always' });
    for (let i = 0; i < 10; i++) await store.set(`a/${i}`, { i });
    await store.set(evilKey, 'x');
    await store.close();
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    const batches = batchesOf(bytes);
    expect(batches).toHaveLength(11);
    // Every BATCH record carries the nonce of the file header.
    const nonce = bytes.subarray(20, 28);
    for (const b of batches) expect(bytes.subarray(b.start + 29, b.start + 37).equals(nonce)).toBe(true);
    const last = batches[10];
    const forgedAt = bytes.indexOf(forged, last.start);
    expect(forgedAt).toBeGreaterThan(last.records[0]);
    // A torn final batch: its SET record's CRC never reached the disk.
    bytes.fill(0, last.records[0], last.records[0] + 4);
    fs.writeFileSync(file, bytes);

    const { logger, lines } = capturingLogger();
    const reopened = await openFileStore({ dataDir, logger });
    expect(reopened.revision).toBe(10);
    expect(await dump(reopened)).toEqual(Array.from({ length: 10 }, (_, i) => [`a/${i}`, { i }, i + 1, i + 1, 1]));
    expect(await reopened.get(evilKey)).toBeUndefined();
    expect(fs.statSync(file).size).toBe(last.start);
    expect(lines.find((l) => l.level === 40 && String(l.msg).includes('torn'))).toMatchObject({
      file,
      offset: last.start,
      damageOffset: last.records[0],
    });
    await reopened.close();
  });

  test('a data file of another format version (2: no nonce) refuses to open, naming the version', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    await store.set('a', 1);
    await store.close();
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const bytes = fs.readFileSync(file);
    bytes.writeUInt16LE(2, 8);
    fs.writeFileSync(file, bytes);
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CORRUPT', file, offset: 0 });
    expect((err as Error).message).toContain('unsupported format version 2');
    expect(fs.readFileSync(file)).toEqual(bytes);
  });

  test('fsync=never: damage in a batch followed only by batches written before the next fdatasync drops them all, keeping a prefix', async () => {
    const dataDir = dirs.make();
    // Never synced between batches: every BATCH record says only the header was durable.
    const { file, bytes } = await writeThreeBatches(dataDir, 'never');
    const [first, middle] = batchesOf(bytes);
    losePagesInside(bytes, middle);
    fs.writeFileSync(file, bytes);
    const store = await openFileStore({ dataDir });
    expect(store.revision).toBe(20);
    expect((await store.listKeys()).keys).toHaveLength(20);
    expect((await store.listKeys({ prefix: 'a/' })).keys).toHaveLength(20);
    expect(fs.statSync(file).size).toBe(first.end);
    await store.close();
  });
});

describe('file engine: I/O failures', () => {
  afterEach(() => jest.restoreAllMocks());

  const eio = (): Error => Object.assign(new Error('EIO: i/o error, write (injected)'), { code: 'EIO' });

  test('after a failed append every write gets StoreFailedError (FAILED) naming the file; reads go on; reopen recovers', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({ dataDir, logger });
    await store.set('before', 1);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw eio();
    });
    const failed = await store.set('lost', 2).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StoreFailedError);
    expect(failed).toMatchObject({ code: 'FAILED', file });
    expect((failed as Error).message).toBe(
      `the store stopped accepting writes after an I/O error on ${file}: EIO: i/o error, write (injected); restart the server`,
    );
    expect((failed as Error).cause).toMatchObject({ code: 'EIO' });
    // Later writes: the same error, not the raw EIO.
    await expect(store.set('later', 3)).rejects.toBe(failed);
    await expect(store.delete('before')).rejects.toMatchObject({ code: 'FAILED' });
    await expect(store.clear()).rejects.toMatchObject({ code: 'FAILED' });
    expect(store.failure).toBe(failed);
    expect(await store.get('before')).toMatchObject({ value: 1 });
    expect((await store.listKeys()).keys).toEqual(['before']);
    expect(lines.some((l) => l.level === 50 && l.file === file)).toBe(true);
    await store.close();
    const again = await openFileStore({ dataDir });
    expect((await again.listKeys()).keys).toEqual(['before']);
    expect(await again.set('after restart', 4)).toEqual({ revision: 2 });
    await again.close();
  });

  test('fail() stops writes with StoreFailedError carrying the cause; reads and close still work', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    await store.set('a', 1);
    const cause = new Error('the directory lock was lost');
    store.fail(cause);
    store.fail(new Error('a later failure does not replace the first'));
    const err = await store.set('b', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreFailedError);
    expect(err).toMatchObject({ code: 'FAILED', file: dataDir, cause });
    expect((err as Error).message).toContain('the directory lock was lost; restart the server');
    expect(await store.get('a')).toMatchObject({ value: 1 });
    await store.close();
    await expect(store.get('a')).rejects.toBeInstanceOf(StoreClosedError);
  });

  test('a log rotation that fails is logged once and retried only after the backoff, not on every batch', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      logger,
      compaction: { minBytes: 4096, deadToLiveRatio: 0.5, retryAfterMs: 60_000 },
    });
    // The name compaction's new log would take is taken.
    const blocker = path.join(dataDir, 'wal-0000000000000003.log');
    fs.writeFileSync(blocker, 'not ours');
    for (let round = 0; round < 60; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, { round, pad: 'p'.repeat(80) })));
    }
    expect(store.diskUsage.compacting).toBe(false); // due, but waiting out the backoff
    const failures = lines.filter((l) => l.level === 50 && String(l.msg).includes('could not start a new log'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ file: blocker, retryAfterMs: 60_000, err: { code: 'EEXIST' } });
    expect(fs.readFileSync(blocker, 'utf8')).toBe('not ours');
    expect(logFiles(dataDir)).toEqual(['wal-0000000000000001.log', 'wal-0000000000000003.log']);
    expect(await store.get('k3')).toMatchObject({ value: { round: 59 } });
    await store.close();
  });

  test('a failed compaction whose .tmp cannot be deleted either is logged, not an unhandled rejection; close still closes the log', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      logger,
      compaction: { minBytes: 4096, deadToLiveRatio: 0.5, retryAfterMs: 60_000 },
    });
    const realRename = fs.renameSync;
    const realRm = fs.rmSync;
    jest.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      if (String(from).endsWith('.snap.tmp')) throw eio();
      realRename(from, to);
    });
    jest.spyOn(fs, 'rmSync').mockImplementation((target, options) => {
      if (String(target).endsWith('.snap.tmp'))
        throw Object.assign(new Error('EROFS: read-only file system (injected)'), { code: 'EROFS' });
      realRm(target, options);
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let round = 0;
      await pollUntil('a failed compaction', async () => {
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, { round: round++, pad: 'p'.repeat(80) })));
        return lines.some((l) => l.level === 50 && String(l.msg).includes('compaction failed')) || undefined;
      });
      expect(lines.some((l) => l.level === 50 && String(l.msg).includes('could not delete') && String(l.file).endsWith('.snap.tmp'))).toBe(
        true,
      );
      expect(await store.set('after', 1)).toMatchObject({ revision: round + 1 });
      await store.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    jest.restoreAllMocks();
    // The log was closed properly; the leftover .tmp is removed at the next open.
    const again = await openFileStore({ dataDir });
    expect(await again.get('after')).toMatchObject({ value: 1 });
    expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await again.close();
  });

  test('a new log that fails half-way through creation is removed, so a later rotation and compaction succeed', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      logger,
      compaction: { minBytes: 4096, deadToLiveRatio: 0.5, retryAfterMs: 50 },
    });
    // The first sync of a new log's header fails (after its file was created).
    jest.spyOn(fs, 'fdatasyncSync').mockImplementationOnce(() => {
      throw eio();
    });
    let round = 0;
    const write = (): Promise<unknown> =>
      Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, { round: round++, pad: 'p'.repeat(80) })));
    await pollUntil('a failed rotation', async () => {
      await write();
      return lines.some((l) => String(l.msg).includes('could not start a new log')) ? true : undefined;
    });
    expect(fs.existsSync(path.join(dataDir, 'wal-0000000000000003.log'))).toBe(false);
    await pollUntil('a compaction to finish after the backoff', async () => {
      await write();
      return fs.readdirSync(dataDir).some((f) => f.endsWith('.snap')) && !store.diskUsage.compacting ? true : undefined;
    });
    expect(lines.filter((l) => String(l.msg).includes('could not start a new log'))).toHaveLength(1);
    const expected = await dump(store);
    await store.close();
    const again = await openFileStore({ dataDir });
    expect(await dump(again)).toEqual(expected);
    await again.close();
  });

  test('an empty log left by an unfinished creation after the active log is removed at open, and the log before it may have a torn tail', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    for (let i = 0; i < 5; i++) await store.set(`k${i}`, i);
    await store.close();
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    fs.truncateSync(file, fs.statSync(file).size - 3); // torn final batch
    const leftover = path.join(dataDir, 'wal-0000000000000003.log');
    fs.writeFileSync(leftover, Buffer.from('KVSTO', 'latin1')); // header cut short
    const again = await openFileStore({ dataDir });
    expect(again.revision).toBe(4);
    expect(fs.existsSync(leftover)).toBe(false);
    expect(await again.set('k9', 9)).toEqual({ revision: 5 });
    await again.close();
    const third = await openFileStore({ dataDir });
    expect(await third.get('k9')).toMatchObject({ modRevision: 5 });
    await third.close();
  });
});

describe('file engine: directory lock', () => {
  test('a second opener in the same process gets LockedError saying the directory is already open here', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toBe(`data directory ${dataDir} is already open in this process`);
    await store.close();
    // Released on close: it opens now.
    const again = await openFileStore({ dataDir });
    await again.close();
  });

  test('a second opener in another process gets LockedError naming the directory and our pid', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'open-once.ts'), dataDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(3);
    expect(JSON.parse(out)).toEqual({
      code: 'LOCKED',
      message: `data directory ${dataDir} is in use by another process (pid ${process.pid})`,
    });
    await store.close();
  });

  test("a SIGKILLed owner's lock is taken over at once, without deleting data", async () => {
    const dataDir = dirs.make();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'open-once.ts'), dataDir, 'hold'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await pollUntil('the child to hold the lock', () => (out.includes('holding') ? true : undefined), 20_000);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(true);
    const started = Date.now();
    const store = await openFileStore({ dataDir });
    expect(Date.now() - started).toBeLessThan(5_000); // not the 10 s staleness wait
    expect(await store.get('held')).toMatchObject({ value: true, modRevision: 1 });
    await store.close();
  });
});

describe('file engine: compaction', () => {
  const small: FileStoreOptions['compaction'] = { minBytes: 16 * 1024, deadToLiveRatio: 1 };

  test('after churn the disk stays within ~2x live data and everything survives reopen', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: small });
    const model = new Map<string, number>();
    // The most the files took at any moment seen, against the live data then. Writes wait for each
    // compaction here, so nothing is written while one runs (another test does that).
    let worst = 0;
    const sample = (): void => {
      worst = Math.max(worst, dataBytes(dataDir) - 3 * store.diskUsage.liveBytes);
    };
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const k = `key/${(round * 7 + i) % 120}`;
          const v = round * 1000 + i;
          model.set(k, v);
          return store.set(k, { v, pad: 'p'.repeat(60) });
        }),
      );
      if (round % 10 === 9) {
        await store.delete('key/3');
        model.delete('key/3');
      }
      sample();
      await pollUntil('compaction to finish', () => {
        sample();
        return store.diskUsage.compacting ? undefined : true;
      });
    }
    // At most 2x live when a compaction becomes due (plus the batch that made it due), and the
    // snapshot being written (at most 1x live) beside the files it replaces: never more than
    // 3x live plus a batch (50 records of ~120 bytes) and file headers, however long the churn.
    expect(worst).toBeLessThanOrEqual(8 * 1024);
    await pollUntil('compaction to finish', () => (store.diskUsage.compacting ? undefined : true));
    const { diskBytes, liveBytes } = store.diskUsage;
    expect(diskBytes).toBe(dataBytes(dataDir));
    // Dead ≤ ratio × live after compaction, plus one batch and file headers of slack.
    expect(diskBytes).toBeLessThanOrEqual(2 * liveBytes + 16 * 1024);
    // The churn wrote far more than that, so compaction did run.
    expect(40 * 50 * 90).toBeGreaterThan(4 * diskBytes);
    expect(fs.readdirSync(dataDir).some((f) => f.endsWith('.snap'))).toBe(true);
    const revision = store.revision;
    await store.close();
    store = await openFileStore({ dataDir });
    expect(store.revision).toBe(revision);
    expect((await store.listKeys()).keys.length).toBe(model.size);
    for (const [k, v] of model) expect((await store.get(k))?.value).toMatchObject({ v });
    await store.close();
  });

  test('reads and writes keep working while a compaction is writing its snapshot', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: { minBytes: 8 * 1024 * 1024, deadToLiveRatio: 1 } });
    // ~8 MiB of live data (8 snapshot chunks), overwritten until a compaction starts.
    const big = 'b'.repeat(2000);
    const model = new Map<string, string | number>();
    let writesDuring = 0;
    let version = 0;
    while (writesDuring === 0 && version < 10) {
      version++;
      for (let i = 0; i < 4000; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) => {
            model.set(`k${i + j}`, `${big}${version}`);
            return store.set(`k${i + j}`, `${big}${version}`);
          }),
        );
        while (store.diskUsage.compacting) {
          await store.set(`during-${writesDuring}`, writesDuring);
          model.set(`during-${writesDuring}`, writesDuring);
          expect((await store.get('k0'))?.value).toBe(`${big}${version}`);
          expect((await store.get(`during-${writesDuring}`))?.value).toBe(writesDuring);
          // Overwrite and delete keys the snapshot being written holds: it must keep their old entries.
          const victim = `k${1 + (writesDuring % 3999)}`;
          if (writesDuring % 3 === 0) {
            await store.delete(victim);
            model.delete(victim);
          } else {
            await store.set(victim, `changed ${writesDuring}`);
            model.set(victim, `changed ${writesDuring}`);
          }
          writesDuring++;
        }
      }
    }
    expect(writesDuring).toBeGreaterThan(0);
    await store.close();
    store = await openFileStore({ dataDir });
    expect((await store.listKeys()).keys).toHaveLength(model.size);
    for (const [k, v] of model) expect((await store.get(k))?.value).toBe(v);
    await store.close();
  });

  test('a leftover snapshot .tmp from a crash is ignored and removed', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir });
    await store.set('a', 1);
    await store.close();
    fs.writeFileSync(path.join(dataDir, 'snap-0000000000000002.snap.tmp'), 'half a snapshot');
    store = await openFileStore({ dataDir });
    expect(await store.get('a')).toMatchObject({ value: 1 });
    expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await store.close();
  });

  test('a snapshot with the old files it replaced still beside it (crash before deleting them) recovers right', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: small });
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 20 }, (_, j) => store.set(`k${j}`, { i, pad: 'x'.repeat(100) })));
    await pollUntil('compaction to finish', () => (store.diskUsage.compacting ? undefined : true));
    await store.delete('k0');
    await store.set('k1', 'last');
    const expected = await dump(store);
    await store.close();
    const files = fs
      .readdirSync(dataDir)
      .filter((f) => /\.(log|snap)$/.test(f))
      .sort();
    const snap = files.find((f) => f.endsWith('.snap'));
    expect(snap).toBeDefined();
    // Put back stale older files, as if the crash came between rename and delete:
    // an old log with a different value for k1 and a key that no longer exists.
    fs.copyFileSync(path.join(dataDir, snap as string), path.join(dataDir, 'snap-0000000000000000.snap'));
    const stale = await openFileStore({ dataDir: dirs.make() });
    await stale.set('ghost', 'should not come back');
    await stale.set('k1', 'stale');
    await stale.close();
    fs.copyFileSync(path.join(stale.dataDir, 'wal-0000000000000001.log'), path.join(dataDir, 'wal-0000000000000001.log'));
    store = await openFileStore({ dataDir });
    expect(await dump(store)).toEqual(expected);
    expect(fs.existsSync(path.join(dataDir, 'wal-0000000000000001.log'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'snap-0000000000000000.snap'))).toBe(false);
    await store.close();
  });
});
