/** The file engine recovering damaged logs: torn tails, flipped bytes, power loss inside a batch. */
import fs from 'node:fs';
import path from 'node:path';
import { CorruptDataError } from '../../src/store/errors';
import { openFileStore } from '../../src/store/file';
import { BATCH_RECORD_SIZE, FILE_HEADER_SIZE, checkRecord, emptyRecord, writeBatchRecord } from '../../src/store/file/record-codec';
import { tempDataDirs } from '../support/temp-dirs';

import { batchesOf, capturingLogger, dump, logFiles } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

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
    expect((err as Error).message).toContain('unsupported format version 2 (this build reads versions 3, 4, 5, 6 and 7)');
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
