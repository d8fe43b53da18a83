/** The file engine when the disk fails: failed appends and syncs, failed rotations and compactions. */
import fs from 'node:fs';
import path from 'node:path';
import { StoreClosedError, StoreFailedError } from '../../src/store/errors';
import { openFileStore } from '../../src/store/file';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

import { capturingLogger, dump, logEnd, logFiles } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

describe('file engine: I/O failures', () => {
  afterEach(() => jest.restoreAllMocks());

  const eio = (): Error => Object.assign(new Error('EIO: i/o error, write (injected)'), { code: 'EIO' });

  test('after a failed append every write gets StoreFailedError (FAILED) naming the file until the store heals; reads go on; reopen recovers', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    // No heal attempt during this test (file-store-healing.test.ts covers healing).
    const store = await openFileStore({ dataDir, logger, heal: { firstDelayMs: 60_000 } });
    await store.set('before', 1);
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    jest.spyOn(fs, 'writeSync').mockImplementationOnce(() => {
      throw eio();
    });
    const failed = await store.set('lost', 2).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StoreFailedError);
    expect(failed).toMatchObject({ code: 'FAILED', file });
    expect((failed as Error).message).toBe(
      `the store stopped accepting writes after an I/O error on ${file}: EIO: i/o error, write (injected); writes resume by themselves once the disk accepts them`,
    );
    expect((failed as Error).cause).toMatchObject({ code: 'EIO' });
    // Later writes: the same error, not the raw EIO.
    await expect(store.set('later', 3)).rejects.toBe(failed);
    await expect(store.delete('before')).rejects.toMatchObject({ code: 'FAILED' });
    await expect(store.clear()).rejects.toMatchObject({ code: 'FAILED' });
    expect(store.failure).toBe(failed);
    expect(await store.get('before')).toMatchObject({ value: 1 });
    expect((await store.listKeys()).keys).toEqual(['before']);
    // Logged once, its error without a stack (the disk's error, not the code's).
    expect(lines.filter((l) => Number(l.level) >= 50)).toEqual([
      expect.objectContaining({
        file,
        msg: (failed as Error).message,
        err: { type: 'Error', message: 'EIO: i/o error, write (injected)', code: 'EIO' },
      }),
    ]);
    await store.close();
    const again = await openFileStore({ dataDir });
    expect((await again.listKeys()).keys).toEqual(['before']);
    expect(await again.set('after restart', 4)).toEqual({ revision: 2 });
    await again.close();
  });

  test('a write whose fdatasync failed is not read back by a clean stop and a restart: it was cut off the log at once', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, heal: { firstDelayMs: 60_000 } });
    await store.set('a', 'before');
    const file = path.join(dataDir, logFiles(dataDir)[0]);
    const durable = logEnd(file);
    jest.spyOn(fs, 'fdatasync').mockImplementationOnce((_fd: number, callback: (err: Error | null) => void) => callback(eio()));
    await expect(store.set('a', 'failed-write')).rejects.toMatchObject({ code: 'FAILED' });
    expect(fs.statSync(file).size).toBe(durable);
    await store.close();
    const again = await openFileStore({ dataDir });
    try {
      expect(await again.get('a')).toMatchObject({ value: 'before', modRevision: 1 });
      expect(again.revision).toBe(1);
    } finally {
      await again.close();
    }
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

  test('a checkpoint that fills the disk with the watch history is written again at once without it, and the history is whole in memory', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({ dataDir, fsync: 'never', logger, compaction: { minBytes: 4096, deadToLiveRatio: 0.5 } });
    const realOpen = fs.promises.open;
    let failed = 0;
    // The first checkpoint's file takes a few writes, then the disk is "full" (ENOSPC), as a real one fills mid-file.
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      const handle = await realOpen(...args);
      if (failed > 0 || !String(args[0]).endsWith('.snap.tmp')) return handle;
      failed++;
      let writes = 0;
      const realWrite = handle.write.bind(handle) as (...a: unknown[]) => Promise<unknown>;
      Object.assign(handle, {
        write: (...a: unknown[]) =>
          ++writes > 1
            ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write (injected)'), { code: 'ENOSPC' }))
            : realWrite(...a),
      });
      return handle;
    });
    try {
      let round = 0;
      await pollUntil('a compaction that finished', async () => {
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.set(`k${i}`, { round: round++, pad: 'p'.repeat(80) })));
        return lines.some((l) => l.msg === 'compaction finished') || undefined;
      });
      expect(failed).toBe(1);
      const warnings = lines.filter((l) => String(l.msg).startsWith('this checkpoint carries no watch history: the disk filled up'));
      expect(warnings).toHaveLength(1);
      expect(lines.some((l) => String(l.msg).startsWith('compaction failed'))).toBe(false);
      // In memory the window still starts at the first revision.
      expect(store.feedStatus.oldestRevision).toBe(1);
      await store.close();
    } finally {
      jest.restoreAllMocks();
    }
    // Reopened, the history starts after that checkpoint: an older start is COMPACTED, never a gap. (Unless the last
    // writes made another checkpoint due before the close: that one carries the whole window again, from revision 1.)
    const checkpoints = lines.filter((l) => l.msg === 'compaction finished').length;
    const again = await openFileStore({ dataDir });
    if (checkpoints === 1) expect(again.feedStatus.oldestRevision).toBeGreaterThan(1);
    else expect(again.feedStatus.oldestRevision).toBe(1);
    expect(await again.get('k0')).toBeDefined();
    await again.close();
  });

  test('a new log that fails half-way through creation is removed, so a later rotation and compaction succeed', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      logger,
      // A backoff long enough that no retry recreates the log before the test looks for it.
      compaction: { minBytes: 4096, deadToLiveRatio: 0.5, retryAfterMs: 1000 },
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
    await pollUntil('a compaction after the backoff', async () => {
      await write();
      return fs.readdirSync(dataDir).some((f) => f.endsWith('.snap')) ? true : undefined;
    });
    await pollUntil('compactions to finish', () => (store.diskUsage.compacting ? undefined : true));
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
