/**
 * The file engine heals after an I/O failure without a restart: on a
 * backoff it closes, recovers its directory and reopens; writes resume once
 * the disk accepts them; the failed batch is never applied, published nor
 * acknowledged; a lost lock or a disk that disagrees never heals.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type FileStore, openFileStore } from '../../src/store/file';
import { mountSmallDisk, setImmutable, testWithImmutableFiles, testWithSmallDisk } from '../support/disk-faults';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';
import { capturingLogger, dump, eventsThrough, expectReopenEquals, logEnd, logFiles } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());
afterEach(() => jest.restoreAllMocks());

const eio = (): Error => Object.assign(new Error('EIO: i/o error (injected)'), { code: 'EIO' });
const healed = (store: FileStore): Promise<true> => pollUntil('writes to resume', () => (store.failure === undefined ? true : undefined));
const testSmallDisk = testWithSmallDisk();
const testImmutable = testWithImmutableFiles();

test('after a failed append, writes resume by themselves; the failed write was never applied; reads went on', async () => {
  const dataDir = dirs.make();
  const { logger, lines } = capturingLogger();
  const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 20 } });
  await store.set('before', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
    throw eio();
  });
  const failed = await store.set('lost', 2).catch((e: unknown) => e);
  expect(failed).toMatchObject({ code: 'FAILED', file, retrying: true });
  expect((failed as Error).message).toBe(
    `the store stopped accepting writes after an I/O error on ${file}: EIO: i/o error (injected); writes resume by themselves once the disk accepts them`,
  );
  expect(await store.get('before')).toMatchObject({ value: 1 });

  await healed(store);
  expect(await store.set('after', 3)).toEqual({ revision: 2 });
  expect(await store.get('lost')).toBeUndefined();
  expect(lines.filter((l) => l.msg === 'the store takes writes again')).toEqual([expect.objectContaining({ attempts: 1 })]);
  await expectReopenEquals(store, dataDir);
});

test('a caller that retries a refused write at once, with no pause between attempts, does not keep the store from healing', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, heal: { firstDelayMs: 20 } });
  await store.set('before', 1);
  jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
    throw eio();
  });
  // A retry loop as an application embedding the store might write one. Each refusal comes back in a microtask:
  // unless the store lets the event loop turn between them, its heal (a timer) never runs, nor does anything else.
  // Bounded by the wall clock, which needs no turn of the event loop.
  const giveUpAt = Date.now() + 10_000;
  let refused = 0;
  const written = await (async () => {
    while (Date.now() < giveUpAt) {
      try {
        return await store.set('k', 'v');
      } catch {
        refused++;
      }
    }
    return `still refused after ${refused} attempts in 10 s`;
  })();
  expect(written).toEqual({ revision: 2 });
  expect(refused).toBeGreaterThan(0);
  await expectReopenEquals(store, dataDir);
});

test('a batch whose fdatasync failed is cut off the log: never applied, published nor acknowledged; a watcher gets every other change once, in order', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, heal: { firstDelayMs: 20 } });
  const watch = store.watch({ prefix: '' });
  await store.set('a', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  const durable = logEnd(file);
  jest.spyOn(fs, 'fdatasync').mockImplementationOnce((_fd: number, callback: (err: Error | null) => void) => callback(eio()));
  await expect(store.set('b', 2)).rejects.toMatchObject({ code: 'FAILED', retrying: true });
  // Only the fdatasync failed, but the batch is cut off the file at once (a restart must not read it back).
  expect(logEnd(file)).toBe(durable);

  await healed(store);
  expect(fs.statSync(file).size).toBe(durable);
  expect(await store.get('b')).toBeUndefined();
  expect(await store.set('c', 3)).toEqual({ revision: 2 });
  await store.delete('a');
  const events = await eventsThrough(watch, 3);
  expect(events.map((e) => [e.type, e.key, e.revision])).toEqual([
    ['put', 'a', 1],
    ['put', 'c', 2],
    ['delete', 'a', 3],
  ]);
  watch.close();
  await expectReopenEquals(store, dataDir);
});

test('with fsync=interval, the batches acknowledged before a failed fdatasync are kept by the heal', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, fsync: 'interval', fsyncIntervalMs: 5, heal: { firstDelayMs: 20 } });
  jest.spyOn(fs, 'fdatasync').mockImplementationOnce((_fd: number, callback: (err: Error | null) => void) => callback(eio()));
  expect(await store.set('a', 1)).toEqual({ revision: 1 }); // acknowledged before its (failing) fdatasync
  await pollUntil('the interval fdatasync to fail', () => (store.failure !== undefined ? true : undefined));
  await healed(store);
  expect(await store.get('a')).toMatchObject({ value: 1, modRevision: 1 });
  expect(await store.set('b', 2)).toEqual({ revision: 2 });
  await expectReopenEquals(store, dataDir);
});

testSmallDisk(
  'a full disk (a small tmpfs) fails writes, each heal attempt is logged once per backoff step, and writes resume once space is freed',
  async () => {
    const disk = mountSmallDisk(1024 * 1024);
    try {
      const dataDir = path.join(disk.dir, 'data');
      const { logger, lines } = capturingLogger();
      const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 20, maxDelayMs: 160 } });
      await store.set('small', 1);
      const filler = path.join(disk.dir, 'filler');
      const fd = fs.openSync(filler, 'w');
      try {
        for (let at = 0; ; at += 4096) fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, at);
      } catch (err) {
        expect(err).toMatchObject({ code: 'ENOSPC' });
      } finally {
        fs.closeSync(fd);
      }

      const big = 'x'.repeat(64 * 1024);
      const failed = await store.set('big', big).catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: 'FAILED', retrying: true, cause: { code: 'ENOSPC' } });
      await expect(store.set('other', 2)).rejects.toMatchObject({ code: 'FAILED' });
      expect(await store.get('small')).toMatchObject({ value: 1 });
      const attempts = (): Array<Record<string, unknown>> => lines.filter((l) => String(l.msg).startsWith('could not resume writes yet'));
      await pollUntil('five failed attempts', () => (attempts().length >= 5 ? true : undefined));
      expect(attempts().slice(0, 5)).toEqual(
        [40, 80, 160, 160, 160].map((retryInMs, i) =>
          expect.objectContaining({ attempt: i + 1, retryInMs, err: expect.objectContaining({ code: 'ENOSPC' }) }),
        ),
      );
      // The failure is one line, its error without a stack; each retry line names the disk's error, without a stack.
      const failures = lines.filter((l) => Number(l.level) >= 50);
      expect(failures).toEqual([
        expect.objectContaining({
          msg: (failed as Error).message,
          err: { type: 'Error', message: 'ENOSPC: no space left on device, write', code: 'ENOSPC', errno: -28, syscall: 'write' },
        }),
      ]);
      for (const attempt of attempts()) {
        expect(attempt.err).toEqual(
          expect.objectContaining({ message: expect.stringContaining('ENOSPC'), code: 'ENOSPC', syscall: 'write' }),
        );
        expect(attempt.err).not.toHaveProperty('stack');
      }
      expect(store.failure).toBeDefined();

      fs.rmSync(filler);
      await healed(store);
      expect(await store.set('big', big)).toEqual({ revision: 2 });
      await expectReopenEquals(store, dataDir);
    } finally {
      disk.unmount();
    }
  },
);

testImmutable('an immutable log file (chattr +i) fails writes until it is made mutable again', async () => {
  const dataDir = dirs.make();
  const { logger, lines } = capturingLogger();
  const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 20, maxDelayMs: 100 } });
  await store.set('a', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  setImmutable(file, true);
  try {
    await expect(store.set('b', 2)).rejects.toMatchObject({ code: 'FAILED', retrying: true, cause: { code: 'EPERM' } });
    await pollUntil('two failed attempts', () =>
      lines.filter((l) => String(l.msg).startsWith('could not resume writes yet')).length >= 2 ? true : undefined,
    );
    await expect(store.set('b', 2)).rejects.toMatchObject({ code: 'FAILED' });
  } finally {
    setImmutable(file, false);
  }
  await healed(store);
  expect(await store.set('b', 2)).toEqual({ revision: 2 });
  await expectReopenEquals(store, dataDir);
});

testImmutable('a store closed while it heals closes cleanly and releases its directory', async () => {
  const dataDir = dirs.make();
  const { logger, lines } = capturingLogger();
  const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 20, maxDelayMs: 40 } });
  await store.set('a', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  setImmutable(file, true);
  try {
    await expect(store.set('b', 2)).rejects.toMatchObject({ code: 'FAILED' });
    await pollUntil('a failed attempt', () =>
      lines.some((l) => String(l.msg).startsWith('could not resume writes yet')) ? true : undefined,
    );
    await store.close();
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
  } finally {
    setImmutable(file, false);
  }
  const again = await openFileStore({ dataDir });
  expect(await dump(again)).toEqual([['a', 1, 1, 1, 1]]);
  await again.close();
});

test('a lease whose expiry fell while the store was failed expires after the heal, as after a restart', async () => {
  const dataDir = dirs.make();
  const { logger, lines } = capturingLogger('debug');
  const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 300 } });
  const lease = await store.grantLease(100);
  await store.set('leased', 1, { lease: lease.id });
  jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
    throw eio();
  });
  await expect(store.set('other', 2)).rejects.toMatchObject({ retrying: true });
  // Refused by the failed store: said at debug level (the store's failure is its warning), without a stack.
  await pollUntil('the expiry to wait', () =>
    lines.some((l) => l.msg === 'lease expiry waits for the store to take writes') ? true : undefined,
  );
  expect(lines.some((l) => l.msg === 'lease expiry failed')).toBe(false);
  expect(await store.get('leased')).toMatchObject({ value: 1 });
  await healed(store);
  await pollUntil('the lease to expire after the heal', async () => ((await store.get('leased')) === undefined ? true : undefined));
  await expectReopenEquals(store, dataDir);
});

test('a store failed for good (a lost directory lock) never heals, even after an I/O failure', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, heal: { firstDelayMs: 20, maxDelayMs: 20 } });
  await store.set('a', 1);
  jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
    throw eio();
  });
  await expect(store.set('b', 2)).rejects.toMatchObject({ retrying: true });
  store.fail(new Error('the directory lock was lost'));
  // Ten times the backoff: an attempt would have healed the store by now.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const err = await store.set('c', 3).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'FAILED', retrying: false });
  expect((err as Error).message).toContain('the directory lock was lost; restart the server');
  await store.close();
});

test('a data directory that no longer holds what the store served is not healed: the store stays failed until a restart', async () => {
  const dataDir = dirs.make();
  const { logger } = capturingLogger();
  const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 200 } });
  await store.set('a', 1);
  const file = path.join(dataDir, logFiles(dataDir)[0]);
  const afterFirst = logEnd(file);
  await store.set('b', 2);
  jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
    throw eio();
  });
  await expect(store.set('c', 3)).rejects.toMatchObject({ retrying: true });
  // Before the first attempt: the acknowledged write of b disappears from the disk.
  fs.truncateSync(file, afterFirst);
  await pollUntil('the heal to give up', () => (store.failure?.retrying === false ? true : undefined));
  expect(store.failure?.message).toBe(
    `the store stopped accepting writes after an I/O error on ${dataDir}: the data directory no longer holds what the store served ` +
      '(its log ends at revision 1, the store is at 2); not resuming writes; restart the server',
  );
  expect(await store.get('b')).toMatchObject({ value: 2 });
  await store.close();
});
