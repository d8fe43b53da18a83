/**
 * In fsync=always mode the log writer keeps zeros written ahead of the
 * newest log's last batch (so an fdatasync does not also commit a new file
 * size): they never reach a sealed log or a cleanly closed one, and a
 * restart after a crash reads them as the log's unwritten end, not as
 * damage. The other modes append past the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openFileStore } from '../../src/store/file';
import pino from 'pino';
import { LogWriter, PREALLOCATE_BYTES, createLogFile } from '../../src/store/file/log-writer';
import { FILE_HEADER_SIZE } from '../../src/store/file/record-codec';
import { mountSmallDisk, testWithSmallDisk } from '../support/disk-faults';
import { tempDataDirs } from '../support/temp-dirs';
import { capturingLogger, dump, logEnd, logFiles } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

const sizeOf = (file: string): number => fs.statSync(file).size;

test('the newest log is zero-filled ahead of its last batch while open, and ends at its last batch once closed', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir });
  await store.set('a', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  const end = logEnd(file);
  expect(sizeOf(file)).toBe(end + PREALLOCATE_BYTES);
  expect(
    fs
      .readFileSync(file)
      .subarray(end)
      .every((byte) => byte === 0),
  ).toBe(true);
  // Batches go over the zeros: the file keeps its length until they run out.
  await store.set('b', 2);
  expect(logEnd(file)).toBeGreaterThan(end);
  expect(sizeOf(file)).toBe(end + PREALLOCATE_BYTES);
  await store.close();
  expect(sizeOf(file)).toBe(logEnd(file));
});

test.each(['never', 'interval'] as const)('fsync=%s writes no zeros ahead: the log ends at its last batch', async (fsync) => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, fsync });
  for (let i = 0; i < 3; i++) await store.set(`k${i}`, i);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  expect(logEnd(file)).toBeGreaterThan(FILE_HEADER_SIZE);
  expect(sizeOf(file)).toBe(logEnd(file));
  await store.close();
  const reopened = await openFileStore({ dataDir, fsync: 'always' });
  expect(await reopened.get('k2')).toMatchObject({ value: 2 });
  // Back in fsync=always mode, the next batch writes zeros ahead of it again.
  await reopened.set('k3', 3);
  expect(sizeOf(file)).toBe(logEnd(file) + PREALLOCATE_BYTES);
  await reopened.close();
});

test('past the zeros written ahead, the next chunk is written', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, fsync: 'always' });
  const big = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 20; i++) await store.set(`k${i}`, big);
  const file = path.join(dataDir, logFiles(dataDir).at(-1) ?? '');
  expect(logEnd(file)).toBeGreaterThan(PREALLOCATE_BYTES);
  expect(sizeOf(file)).toBeGreaterThan(logEnd(file));
  expect(sizeOf(file) - logEnd(file)).toBeLessThanOrEqual(PREALLOCATE_BYTES);
  await store.close();
});

test('a zero-fill that fails part way fails no write, and the zeros it left are cut off at close', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir });
  const realWrite = fs.writeSync.bind(fs) as (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;
  const spy = jest.spyOn(fs, 'writeSync').mockImplementation(((
    fd: number,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ) => {
    if (length !== PREALLOCATE_BYTES) return realWrite(fd, buffer, offset, length, position);
    realWrite(fd, buffer, offset, 4096, position);
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }) as typeof fs.writeSync);
  try {
    expect(await store.set('a', 1)).toEqual({ revision: 1 });
    expect(await store.set('b', 2)).toEqual({ revision: 2 });
  } finally {
    spy.mockRestore();
  }
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  expect(sizeOf(file)).toBeGreaterThan(logEnd(file));
  await store.close();
  expect(sizeOf(file)).toBe(logEnd(file));
  const reopened = await openFileStore({ dataDir });
  expect(await reopened.get('b')).toMatchObject({ value: 2 });
  await reopened.close();
});

test('after a crash, zeros after the last batch are the unwritten end: cut off without a warning, every write kept', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir });
  for (let i = 0; i < 5; i++) await store.set(`key-${i}`, { i });
  const expected = await dump(store);
  // The files as a crash would leave them: copied while the store still has them open.
  const crashed = dirs.make();
  for (const name of fs.readdirSync(dataDir)) if (name !== 'LOCK') fs.copyFileSync(path.join(dataDir, name), path.join(crashed, name));
  await store.close();
  const file = path.join(crashed, logFiles(crashed)[0]);
  const end = logEnd(file);
  expect(sizeOf(file)).toBeGreaterThan(end);

  const { logger, lines } = capturingLogger();
  const reopened = await openFileStore({ dataDir: crashed, logger });
  expect(await dump(reopened)).toEqual(expected);
  expect(lines.filter((line) => Number(line.level) >= 40)).toEqual([]);
  expect(lines.filter((line) => String(line.msg).includes('zeros written ahead'))).toEqual([
    expect.objectContaining({ file, offset: end }),
  ]);
  expect(await reopened.set('after', 1)).toEqual({ revision: 6 });
  await reopened.close();
  expect(sizeOf(file)).toBe(logEnd(file));
  const again = await openFileStore({ dataDir: crashed });
  expect(await again.get('after')).toMatchObject({ modRevision: 6 });
  await again.close();
});

test('zeros and then anything else after the last batch are damage: a torn tail, warned about', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir });
  await store.set('a', 1);
  await store.close();
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  const end = logEnd(file);
  fs.appendFileSync(file, Buffer.concat([Buffer.alloc(4096), Buffer.from('x')]));
  const { logger, lines } = capturingLogger();
  const reopened = await openFileStore({ dataDir, logger });
  expect(await reopened.get('a')).toMatchObject({ value: 1 });
  expect(lines.filter((line) => line.level === 40 && String(line.msg).includes('torn'))).toEqual([
    expect.objectContaining({ offset: end }),
  ]);
  await reopened.close();
});

test('a log sealed by a rotation ends at its last batch, and the new one starts without zeros', async () => {
  const dataDir = dirs.make();
  const writer = new LogWriter(dataDir, createLogFile(dataDir, 1, 0), 'always', 1000, pino({ level: 'silent' }));
  const entry = { valueJson: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 };
  writer.append([{ type: 'set', key: 'a', revision: 1, entry, prev: undefined }]);
  await writer.commit();
  const sealedFile = path.join(dataDir, logFiles(dataDir)[0]);
  expect(sizeOf(sealedFile)).toBeGreaterThan(logEnd(sealedFile));
  const sealed = await writer.rotate(2, 1);
  expect(sizeOf(sealedFile)).toBe(sealed.size);
  expect(sealed.size).toBe(logEnd(sealedFile));
  expect(sizeOf(path.join(dataDir, logFiles(dataDir)[1]))).toBe(FILE_HEADER_SIZE);
  await writer.close();
});

testWithSmallDisk()('on a nearly full filesystem nothing is written ahead: the last free bytes go to batches', async () => {
  const disk = mountSmallDisk(1024 * 1024);
  try {
    const store = await openFileStore({ dataDir: disk.dir });
    await store.set('a', 1);
    const file = path.join(disk.dir, logFiles(disk.dir)[0]);
    expect(sizeOf(file)).toBe(logEnd(file));
    await store.close();
  } finally {
    disk.unmount();
  }
});
