/**
 * The store's history id (src/store/file/history-id.ts): the same across
 * clean restarts and crashes that lose no change a watcher was sent; a new
 * one where revisions may name other changes (a run with fsync interval or
 * never that did not close, on a machine that restarted since; a damaged or
 * missing file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { openFileStore } from '../../src/store/file';
import { startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { capturingLogger, logEnd } from './file-store-support';

const ID = /^[0-9a-f]{16}$/;
const BOOT_ID = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();

function fileOf(dir: string): string {
  return fs.readFileSync(path.join(dir, 'history-id'), 'latin1');
}

async function idAfterOpen(dir: string, fsync: 'always' | 'interval' | 'never' = 'always'): Promise<string> {
  return (await renewedAfter(dir, fsync)).id;
}

/** Opens and closes the store: its history id, and the warnings the open logged. */
async function renewedAfter(dir: string, fsync: 'always' | 'interval' | 'never' = 'always'): Promise<{ id: string; warnings: string[] }> {
  const { logger, lines } = capturingLogger();
  const store = await openFileStore({ dataDir: dir, fsync, logger });
  const id = store.historyId;
  await store.close();
  return { id, warnings: lines.filter((line) => line.level === 40).map((line) => String(line.msg)) };
}

test('a new store takes a history id and keeps it across clean restarts, in every fsync mode', async () => {
  const dir = makeTempDir('kv-history-id-');
  const first = await idAfterOpen(dir);
  expect(first).toMatch(ID);
  expect(fileOf(dir)).toBe(`${first}\n`);
  expect(await idAfterOpen(dir, 'interval')).toBe(first);
  expect(await idAfterOpen(dir, 'never')).toBe(first);
  expect(await idAfterOpen(dir)).toBe(first);
  // Another store has another.
  expect(await idAfterOpen(makeTempDir('kv-history-id-'))).not.toBe(first);
});

test('while a run with fsync interval is open the file says so, with the boot id; a clean close marks it clean', async () => {
  const dir = makeTempDir('kv-history-id-');
  const store = await openFileStore({ dataDir: dir, fsync: 'interval' });
  const id = store.historyId;
  try {
    await store.set('k', 1);
    expect(fileOf(dir)).toBe(`${id} unsynced ${BOOT_ID}\n`);
  } finally {
    await store.close();
  }
  expect(fileOf(dir)).toBe(`${id}\n`);
});

test('an unsynced run that did not close keeps its id on the same boot, and takes a new one after the machine restarted', async () => {
  const dir = makeTempDir('kv-history-id-');
  const id = await idAfterOpen(dir);
  // As a run with fsync interval or never leaves the file when it is killed (the page cache kept its writes).
  fs.writeFileSync(path.join(dir, 'history-id'), `${id} unsynced ${BOOT_ID}\n`);
  expect(await idAfterOpen(dir)).toBe(id);
  expect(fileOf(dir)).toBe(`${id}\n`);

  // Killed, and the machine went down before the page cache was written back: changes watchers saw may be gone.
  fs.writeFileSync(path.join(dir, 'history-id'), `${id} unsynced 00000000-0000-0000-0000-000000000000\n`);
  const { id: renewed, warnings } = await renewedAfter(dir);
  expect(renewed).toMatch(ID);
  expect(renewed).not.toBe(id);
  expect(fileOf(dir)).toBe(`${renewed}\n`);
  expect(warnings).toEqual([expect.stringContaining('did not close cleanly and the machine has restarted since') as string]);
});

test('a history id file without its final newline (edited by hand) keeps its id', async () => {
  const dir = makeTempDir('kv-history-id-');
  const id = await idAfterOpen(dir);
  fs.writeFileSync(path.join(dir, 'history-id'), id);
  expect(await renewedAfter(dir)).toEqual({ id, warnings: [] });
  expect(fileOf(dir)).toBe(`${id}\n`);
});

test('a damaged or missing history id file gives a new id, with a warning for the damaged one', async () => {
  const dir = makeTempDir('kv-history-id-');
  const id = await idAfterOpen(dir);
  fs.writeFileSync(path.join(dir, 'history-id'), 'not an id\n');
  const { id: renewed, warnings } = await renewedAfter(dir);
  expect(renewed).toMatch(ID);
  expect(renewed).not.toBe(id);
  expect(warnings).toEqual([expect.stringMatching(/^the history id file does not read as one/) as string]);
  fs.rmSync(path.join(dir, 'history-id'));
  const again = await idAfterOpen(dir);
  expect(again).toMatch(ID);
  expect(again).not.toBe(renewed);
});

test('a server with --fsync interval killed with SIGKILL keeps its history id: the page cache kept every change it published', async () => {
  const dataDir = makeTempDir('kv-history-id-');
  const server = await startServer({ dataDir, args: ['--fsync', 'interval'] });
  const id = fileOf(dataDir).split(' ')[0];
  expect(fileOf(dataDir)).toBe(`${id} unsynced ${BOOT_ID}\n`);
  await server.kill();
  expect(await idAfterOpen(dataDir, 'interval')).toBe(id);
});

describe('what may have lost changes watchers were sent takes a new id, or leaves the file saying so', () => {
  const eio = (): Error => Object.assign(new Error('EIO: i/o error (injected)'), { code: 'EIO' });
  afterEach(() => jest.restoreAllMocks());

  test('an fdatasync that failed during a run with fsync interval: its clean close leaves the file saying unsynced', async () => {
    const dir = makeTempDir('kv-history-id-');
    const store = await openFileStore({ dataDir: dir, fsync: 'interval', fsyncIntervalMs: 5, heal: { firstDelayMs: 20 } });
    const id = store.historyId;
    jest.spyOn(fs, 'fdatasync').mockImplementationOnce((_fd: number, callback: (err: Error | null) => void) => callback(eio()));
    await store.set('a', 1);
    await pollUntil('the interval fdatasync to fail', () => (store.failure !== undefined ? true : undefined));
    await pollUntil('writes to resume', () => (store.failure === undefined ? true : undefined));
    await store.close();
    // The page cache it healed from may never reach the disk: a restart after a reboot must take a new id.
    expect(fileOf(dir)).toBe(`${id} unsynced ${BOOT_ID}\n`);
  });

  test('an open that could not make the replayed log durable does not mark a killed unsynced run clean', async () => {
    const dir = makeTempDir('kv-history-id-');
    const store = await openFileStore({ dataDir: dir, fsync: 'never' });
    const id = store.historyId;
    await store.set('a', 1);
    await store.close();
    // As a run with fsync never leaves the file when it is killed.
    fs.writeFileSync(path.join(dir, 'history-id'), `${id} unsynced ${BOOT_ID}\n`);
    // The open's fdatasync of the log it appends to (what replay read may be only in the page cache) fails.
    jest.spyOn(fs, 'fdatasyncSync').mockImplementationOnce(() => {
      throw eio();
    });
    await expect(openFileStore({ dataDir: dir })).rejects.toThrow(/EIO/);
    expect(fileOf(dir)).toBe(`${id} unsynced ${BOOT_ID}\n`);
  });

  test('a heal that finds the disk disagrees with what was served gives the directory a new id before it fails for good', async () => {
    const dir = makeTempDir('kv-history-id-');
    const store = await openFileStore({ dataDir: dir, heal: { firstDelayMs: 200 } });
    const id = store.historyId;
    await store.set('a', 1);
    const log = path.join(dir, fs.readdirSync(dir).find((name) => name.endsWith('.log')) as string);
    const end = logEnd(log);
    await store.set('b', 2);
    // A failed append starts a heal; meanwhile the disk loses the batch of 'b', which was served.
    jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw eio();
    });
    await expect(store.set('c', 3)).rejects.toThrow();
    fs.truncateSync(log, end);
    await pollUntil('the store to fail for good', () => (store.failure?.message.includes('restart the server') ? true : undefined));
    await store.close();
    const renewed = fileOf(dir).trim();
    expect(renewed).toMatch(ID);
    expect(renewed).not.toBe(id);
  });
});
