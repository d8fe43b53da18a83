/**
 * Checkpoints: start-up loads the newest checkpoint and replays only the logs
 * after it, whatever the workload (unique keys never leave dead bytes); a
 * damaged checkpoint never costs an acknowledged write.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { KvClient } from '@kv/client';
import { restoreDataDir } from '../../src/restore/restore-data-dir';
import { CorruptDataError } from '../../src/store/errors';
import { HistoryWindow } from '../../src/store/feed/history-window';
import { type FileStore, openFileStore } from '../../src/store/file';
import { END_RECORD_SIZE } from '../../src/store/file/checkpoint-codec';
import { readCheckpoint } from '../../src/store/file/read-checkpoint';
import { FILE_HEADER_SIZE, FORMAT_VERSION } from '../../src/store/file/record-codec';
import { mountSmallDisk, testWithSmallDisk } from '../support/disk-faults';
import { startServer } from '../support/server-process';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';
import { batchesOf, capturingLogger, dump } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

/** A checkpoint once the logs since the last one hold 1 KiB of records, however many keys are live. */
const eager = { logMinBytes: 1024, logToLiveRatio: 0 };

function dataFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /\.(log|snap)$/.test(f))
    .sort();
}

/**
 * Writes one log (no checkpoint: the default thresholds are far off), keeps
 * a copy of it, then reopens with a low threshold: the store checkpoints that
 * log at once (sealing it with nothing after it) and writes go to the next log.
 */
async function checkpointFirstLog(dataDir: string): Promise<{ store: FileStore; firstLog: string; saved: Buffer }> {
  let store = await openFileStore({ dataDir, fsync: 'never' });
  for (let i = 0; i < 100; i++) await store.set(`k/${i % 40}`, { i });
  await store.close();
  const firstLog = path.join(dataDir, 'wal-0000000000000001.log');
  const saved = fs.readFileSync(firstLog);
  store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
  await pollUntil('the checkpoint of the first log', () => (fs.existsSync(firstLog) ? undefined : true));
  await pollUntil('compaction to finish', () => (store.diskUsage.compacting ? undefined : true));
  return { store, firstLog, saved };
}

describe('file engine: checkpoints', () => {
  test("logs and checkpoints are their owner's alone (0600), in a directory that exists with a wider mode too", async () => {
    const dataDir = dirs.make();
    fs.chmodSync(dataDir, 0o755);
    const store = await openFileStore({ dataDir, fsync: 'never', compaction: { logMinBytes: 32 * 1024, logToLiveRatio: 0.25 } });
    for (let i = 0; i < 1000; i++) await store.set(`mode/${i}`, { i, pad: 'x'.repeat(60) });
    await pollUntil('a checkpoint', () =>
      dataFiles(dataDir).some((f) => f.endsWith('.snap')) && !store.diskUsage.compacting ? true : undefined,
    );
    await store.close();
    const modes = dataFiles(dataDir).map((f) => [f, (fs.statSync(path.join(dataDir, f)).mode & 0o777).toString(8)]);
    expect(modes.length).toBeGreaterThanOrEqual(2);
    expect(modes).toEqual(modes.map(([f]) => [f, '600']));
  });

  test('unique keys only (no dead bytes): checkpoints replace the logs, and a reopen loads one and replays the tail', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: { logMinBytes: 32 * 1024, logToLiveRatio: 0.25 } });
    for (let i = 0; i < 3000; i++) await store.set(`user/${String(i).padStart(6, '0')}`, { i, pad: 'x'.repeat(60) });
    await pollUntil('checkpoints to finish', () => (store.diskUsage.compacting ? undefined : true));
    await store.delete('user/000007');
    const expected = await dump(store);
    await store.close();
    const files = dataFiles(dataDir);
    expect(files.filter((f) => f.endsWith('.snap'))).toHaveLength(1);
    expect(files.some((f) => f === 'wal-0000000000000001.log')).toBe(false);
    const { logger, lines } = capturingLogger();
    store = await openFileStore({ dataDir, logger });
    try {
      expect(await dump(store)).toEqual(expected);
      // Most keys are served from the checkpoint's table, not from objects rebuilt by replay.
      expect(store.memoryLayout.tableKeys).toBeGreaterThan(store.memoryLayout.changedKeys);
      expect(lines.find((l) => l.msg === 'store opened')).toMatchObject({ keys: 2999, checkpointKeys: store.memoryLayout.tableKeys });
    } finally {
      await store.close();
    }
  });

  test("keys filling several of the table's slabs: checkpointed twice (the second copying runs from the first), read and reopened intact", async () => {
    const dataDir = dirs.make();
    const big = (i: number, round: number): { i: number; round: number; pad: string } => ({
      i,
      round,
      pad: String(i % 10).repeat(400_000),
    });
    // 110 keys of about 400 KB: 44 MB, more than two 16 MiB slabs; checkpoints only when asked for below.
    let store = await openFileStore({
      dataDir,
      fsync: 'never',
      compaction: { logMinBytes: Number.MAX_SAFE_INTEGER, minBytes: Number.MAX_SAFE_INTEGER },
    });
    for (let i = 0; i < 110; i++) await store.set(`big/${String(i).padStart(3, '0')}`, big(i, 0));
    await store.close();
    const settle = async (): Promise<void> => {
      await pollUntil('a checkpoint of every log', () =>
        !store.diskUsage.compacting && dataFiles(dataDir).filter((f) => f.endsWith('.log')).length === 1 ? true : undefined,
      );
    };
    store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
    await settle();
    expect(store.memoryLayout.tableKeys).toBe(110);
    // A few keys changed, one deleted and one created between table keys: the next checkpoint copies the rest as runs.
    for (const i of [3, 40, 41, 90]) await store.set(`big/${String(i).padStart(3, '0')}`, big(i, 1));
    await store.delete('big/070');
    await store.set('big/050a', big(50, 2));
    await settle();
    expect(store.memoryLayout).toMatchObject({ tableKeys: 110, changedKeys: 0 });
    const expected = await dump(store);
    expect(expected).toHaveLength(110);
    expect(expected.find(([key]) => key === 'big/041')?.[1]).toEqual(big(41, 1));
    await store.close();
    store = await openFileStore({ dataDir });
    try {
      expect(await dump(store)).toEqual(expected);
    } finally {
      await store.close();
    }
  }, 60_000);

  test('changes per live key start a checkpoint too, however few bytes they are; replay counts those after the checkpoint', async () => {
    const dataDir = dirs.make();
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
    for (let i = 0; i < 40; i++) await store.set(`k/${i}`, { i, pad: 'x'.repeat(2000) });
    await pollUntil('every change in a checkpoint', () => (store.diskUsage.compacting ? undefined : true));
    await store.close();
    // Bytes alone would wait for a thousand times the live bytes: only the number of changes can start this one.
    const byChanges = { logMinBytes: 1, logToLiveRatio: 1000, logToKeysRatio: 0.5 };
    store = await openFileStore({ dataDir, fsync: 'never', compaction: byChanges });
    const snaps = dataFiles(dataDir).filter((f) => f.endsWith('.snap'));
    expect(snaps).toHaveLength(1);
    try {
      expect(store.diskUsage.checkpointProgress).toBe(0);
      for (let i = 0; i < 19; i++) await store.set(`k/${i}`, i);
      expect(store.diskUsage.checkpointProgress).toBeCloseTo(19 / 20);
      await store.close();
      store = await openFileStore({ dataDir, fsync: 'never', compaction: byChanges });
      expect(store.diskUsage).toMatchObject({ compacting: false, checkpointProgress: 19 / 20 });
      expect(dataFiles(dataDir).filter((f) => f.endsWith('.snap'))).toEqual(snaps);
      await store.set('k/39', 39);
      await pollUntil('a checkpoint', () => (store.diskUsage.compacting ? undefined : true));
      expect(dataFiles(dataDir).filter((f) => f.endsWith('.snap'))).not.toEqual(snaps);
      expect(store.diskUsage.checkpointProgress).toBe(0);
    } finally {
      await store.close();
    }
  });

  test('by default the logs since the last checkpoint grow to the history window packed, not just 16 MiB, before the next one (which copies the whole window)', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, fsync: 'never' });
    try {
      // One key overwritten with 50 KB values: about 17 MB of logs, and a window of each value with the one before (about 33 MB packed, at its byte limit).
      for (let i = 0; i < 340; i++) await store.set('k', { i, pad: 'x'.repeat(50_000) });
      const { checkpointProgress, compacting, diskBytes } = store.diskUsage;
      expect(diskBytes).toBeGreaterThan(16 * 1024 * 1024);
      expect(compacting).toBe(false);
      expect(dataFiles(dataDir).filter((f) => f.endsWith('.snap'))).toEqual([]);
      expect(checkpointProgress).toBeGreaterThan(0.4);
      expect(checkpointProgress).toBeLessThan(0.7);
      // A window of a few changes takes less than 16 MiB: that bound holds again.
      await store.close();
      const small = await openFileStore({ dataDir, fsync: 'never', feed: { history: { maxChanges: 4 } } });
      try {
        await pollUntil('a checkpoint', () =>
          dataFiles(dataDir).some((f) => f.endsWith('.snap')) && !small.diskUsage.compacting ? true : undefined,
        );
      } finally {
        await small.close();
      }
    } finally {
      await store.close();
    }
  }, 60_000);

  test('a window far larger than the default raises that floor to 64 MiB of logs at most', async () => {
    const dataDir = dirs.make();
    // Checkpoints by log growth only (not for dead bytes, which would start one at 64 MiB of data files too).
    const compaction = { minBytes: 2 ** 40 };
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      compaction,
      feed: { history: { maxChanges: 100_000, maxBytes: 2 ** 30 } },
    });
    try {
      // 80 values of 1 MB to one key: 80 MB of logs, a window of about 160 MB packed (each value with the one before).
      const pad = 'x'.repeat(1_000_000);
      for (let i = 0; i < 80 && !dataFiles(dataDir).some((f) => f.endsWith('.snap')); i++) await store.set('k', { i, pad });
      await pollUntil('a checkpoint', () => (dataFiles(dataDir).some((f) => f.endsWith('.snap')) ? true : undefined));
    } finally {
      await store.close();
    }
  }, 60_000);

  test.each([
    [
      'blocks across slab boundaries, carried into the next slab',
      { slabBytes: 1536 * 1024, carryBytes: 1280 * 1024, readBytes: 512 * 1024, readsAhead: 2 },
    ],
    [
      'slabs smaller than a block: each block in a Buffer of its own',
      { slabBytes: 256 * 1024, carryBytes: 64 * 1024, readBytes: 64 * 1024, readsAhead: 1 },
    ],
  ])('a checkpoint read in small slabs loads every key and change whole: %s', async (_name, layout) => {
    const dataDir = dirs.make();
    // About 3 MiB of keys (blocks of about 1 MiB), values of varied sizes, and the history of their writes; then one checkpoint.
    const history = { history: { maxChanges: 5000 } };
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: { logMinBytes: 2 ** 40 }, feed: history });
    const pad = (i: number): string => 'x'.repeat(i % 97 === 0 ? 20_000 : 200 + (i % 13) * 70);
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; i < 6000; i += 8) await store.set(`k/${String(i % 4000).padStart(5, '0')}`, { i, pad: pad(i) });
      }),
    );
    await store.close();
    store = await openFileStore({ dataDir, fsync: 'never', compaction: eager, feed: history });
    await pollUntil('the checkpoint', () => (store.diskUsage.compacting ? undefined : true));
    const expected = await dump(store);
    const revision = store.revision;
    await store.close();
    const snap = path.join(dataDir, dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string);
    const fd = fs.openSync(snap, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const loaded = await readCheckpoint(
        fd,
        snap,
        size,
        { version: FORMAT_VERSION, baseRevision: revision },
        () => Promise.resolve(),
        layout,
      );
      const keys: unknown[] = [];
      for (let i = 0; i < loaded.table.count; i++) {
        const e = loaded.table.entry(i);
        keys.push([loaded.table.key(i), JSON.parse(e.valueJson), e.createRevision, e.modRevision, e.version]);
      }
      expect(keys).toEqual(expected);
      const history = new HistoryWindow(
        { maxChanges: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER },
        loaded.historyFrom,
        loaded.history,
      );
      expect(history.size).toBeGreaterThan(1000);
      // Packed chunks are HISTORY_COLUMNS blocks; the newest changes, not yet packed, HISTORY blocks.
      expect(new Set(loaded.history.map((segment) => segment.constructor.name))).toEqual(new Set(['PackedColumns', 'PackedHistory']));
      for (let i = 0; i < history.size; i++) expect(history.at(i).revision).toBe(history.revisionAt(i));
      const last = history.at(history.size - 1);
      expect(last.type === 'set' && [last.key, JSON.parse(last.entry.valueJson)]).toEqual(
        expected.filter(([, , , mod]) => mod === revision).map(([key, value]) => [key, value])[0],
      );
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a damaged checkpoint whose replaced files are gone refuses to open, naming file and offset, and changes nothing', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
    for (let i = 0; i < 200; i++) await store.set(`k/${i}`, { i, pad: 'x'.repeat(40) });
    await pollUntil('a checkpoint', () => (store.diskUsage.compacting ? undefined : true));
    await store.close();
    const snap = dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string;
    const file = path.join(dataDir, snap);
    const bytes = fs.readFileSync(file);
    const at = FILE_HEADER_SIZE + 100; // inside the first KEYS block
    bytes[at] ^= 0x10;
    fs.writeFileSync(file, bytes);
    const before = dataFiles(dataDir);
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptDataError);
    expect(err).toMatchObject({ code: 'CORRUPT', file, offset: FILE_HEADER_SIZE });
    expect((err as Error).message).toContain('block CRC mismatch');
    expect(dataFiles(dataDir)).toEqual(before);
    expect(fs.readFileSync(file)).toEqual(bytes);
  });

  test('a checkpoint cut short (no END record) refuses to open rather than load part of the keys', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
    for (let i = 0; i < 200; i++) await store.set(`k/${i}`, i);
    await pollUntil('a checkpoint', () => (store.diskUsage.compacting ? undefined : true));
    await store.close();
    const file = path.join(dataDir, dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string);
    fs.truncateSync(file, fs.statSync(file).size - END_RECORD_SIZE - 10);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({ code: 'CORRUPT', file });
  });

  test('a damaged checkpoint with the files it replaced still there (a crash before their deletion): recovered from them, the checkpoint moved aside', async () => {
    const dataDir = dirs.make();
    const first = await checkpointFirstLog(dataDir);
    let store = first.store;
    const { firstLog, saved } = first;
    await store.delete('k/3');
    await store.set('k/4', 'after the checkpoint');
    const expected = await dump(store);
    await store.close();
    const snap = dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string;
    expect(snap).toBe('snap-0000000000000002.snap');
    // The crash came between the checkpoint's rename and the deletion of what it replaced;
    // later the checkpoint was damaged.
    fs.writeFileSync(firstLog, saved);
    const snapPath = path.join(dataDir, snap);
    const bytes = fs.readFileSync(snapPath);
    bytes[FILE_HEADER_SIZE + 100] ^= 0x10;
    fs.writeFileSync(snapPath, bytes);

    const { logger, lines } = capturingLogger();
    store = await openFileStore({ dataDir, logger });
    try {
      expect(await dump(store)).toEqual(expected);
      expect(lines.find((l) => l.level === 50 && String(l.msg).includes('is damaged'))).toMatchObject({ file: snapPath });
      expect(fs.readFileSync(`${snapPath}.damaged`)).toEqual(bytes);
      expect(fs.existsSync(snapPath)).toBe(false);
      await store.set('k/5', 'more');
    } finally {
      await store.close();
    }
    // And again: the older files are the store now, until the next checkpoint replaces them.
    store = await openFileStore({ dataDir });
    expect((await store.get('k/5'))?.value).toBe('more');
    await store.close();
  });

  test('a damaged checkpoint with only some of the files it replaced (a log missing) is not recovered from them', async () => {
    const dataDir = dirs.make();
    const { store, firstLog, saved } = await checkpointFirstLog(dataDir);
    await store.set('k/4', 'after the checkpoint');
    await store.close();
    // Only the tail of the first log survived: it no longer ends where the next log starts.
    fs.writeFileSync(firstLog, saved.subarray(0, saved.length - 200));
    const snapPath = path.join(dataDir, dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string);
    const bytes = fs.readFileSync(snapPath);
    bytes[FILE_HEADER_SIZE + 100] ^= 0x10;
    fs.writeFileSync(snapPath, bytes);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({ code: 'CORRUPT', file: snapPath });
    expect(fs.existsSync(snapPath)).toBe(true);
  });

  test('a damaged checkpoint whose replaced files are damaged too is refused naming the checkpoint, and says what is wrong with them', async () => {
    const dataDir = dirs.make();
    const { store, firstLog, saved } = await checkpointFirstLog(dataDir);
    await store.set('k/4', 'after the checkpoint');
    await store.close();
    // The log the checkpoint replaced is back (a crash before its deletion), with a byte flipped in its first batch.
    const flipped = Buffer.from(saved);
    flipped[batchesOf(saved)[0].start + 20] ^= 0x10;
    fs.writeFileSync(firstLog, flipped);
    const snapPath = path.join(dataDir, dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string);
    const bytes = fs.readFileSync(snapPath);
    bytes[FILE_HEADER_SIZE + 100] ^= 0x10;
    fs.writeFileSync(snapPath, bytes);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({
      code: 'CORRUPT',
      file: snapPath,
      message: expect.stringMatching(
        new RegExp(
          `block CRC mismatch; replaying the files before it instead failed too: corrupt data in ${firstLog.replace(/[.]/g, '[.]')} at byte offset \\d+: `,
        ),
      ) as unknown,
    });
    expect(fs.existsSync(snapPath)).toBe(true);
  });

  test('a missing checkpoint, or a sealed log cut at a batch boundary (every CRC intact), refuses to open naming the log that does not follow on', async () => {
    const dataDir = dirs.make();
    const { store, saved } = await checkpointFirstLog(dataDir);
    await store.set('k/4', 'after the checkpoint');
    const expected = await dump(store);
    await store.close();
    const files = dataFiles(dataDir);
    const snapPath = path.join(dataDir, files.find((f) => f.endsWith('.snap')) as string);
    const nextLog = path.join(dataDir, files.find((f) => f.endsWith('.log')) as string);
    const refusal = {
      code: 'CORRUPT',
      file: nextLog,
      offset: 0,
      message: expect.stringContaining('a checkpoint or log is missing') as unknown,
    };

    // The checkpoint gone, nothing of what it replaced left: the next log starts at revision 100, not 0.
    fs.rmSync(snapPath);
    await expect(openFileStore({ dataDir })).rejects.toMatchObject(refusal);

    // The log it replaced back, but cut at a batch boundary: it ends before the next log starts.
    const firstLog = path.join(dataDir, 'wal-0000000000000001.log');
    const batches = batchesOf(saved);
    fs.writeFileSync(firstLog, saved.subarray(0, batches[batches.length - 3].start));
    await expect(openFileStore({ dataDir })).rejects.toMatchObject(refusal);
    expect(fs.readFileSync(firstLog).length).toBe(batches[batches.length - 3].start);

    // Whole, it is the same state as the checkpoint was.
    fs.writeFileSync(firstLog, saved);
    const reopened = await openFileStore({ dataDir });
    try {
      expect(await dump(reopened)).toEqual(expected);
    } finally {
      await reopened.close();
    }
  });

  test('a directory holding only an unfinished snapshot (a restore killed part way) refuses to open instead of serving an empty store', async () => {
    const dataDir = dirs.make();
    const tmp = path.join(dataDir, 'snap-0000000000000001.snap.tmp');
    fs.writeFileSync(tmp, Buffer.alloc(4096, 7));
    await expect(openFileStore({ dataDir })).rejects.toMatchObject({
      code: 'CORRUPT',
      file: tmp,
      message: expect.stringContaining('delete the directory and restore again') as unknown,
    });
    expect(fs.existsSync(tmp)).toBe(true);
  });

  test('a restored backup is a checkpoint: the store opens it with every key, lease and revision, and watches start after it', async () => {
    const server = await startServer({ dataDir: dirs.make() });
    const kv = new KvClient(server.address);
    const backup = path.join(dirs.make(), 'kv.backup');
    try {
      for (let i = 0; i < 50; i++) await kv.set(`r/${i}`, { i });
      await kv.delete('r/7');
      const lease = await kv.grantLease(600_000);
      await kv.set('leased', 'v', { lease: lease.id });
      await kv.backup(backup);
    } finally {
      kv.close();
      await server.stop();
    }
    const dataDir = path.join(dirs.make(), 'restored');
    const summary = await restoreDataDir(backup, dataDir);
    expect(dataFiles(dataDir)).toEqual(['snap-0000000000000001.snap']);
    const store = await openFileStore({ dataDir });
    try {
      expect(store.revision).toBe(summary.revision);
      expect((await store.listKeys({ prefix: 'r/' })).keys).toHaveLength(49);
      expect((await store.get('r/3'))?.value).toEqual({ i: 3 });
      expect((await store.get('leased'))?.lease).toBeGreaterThan(0);
      expect(store.memoryLayout.tableKeys).toBe(50);
      expect(store.feedStatus.oldestRevision).toBe(summary.revision + 1);
    } finally {
      await store.close();
    }
  });
});

describe('file engine: the history window across checkpoints', () => {
  test('a window packed as it goes, carried by checkpoints and reopened twice, gives every change with its previous entry', async () => {
    const dataDir = dirs.make();
    const options = { dataDir, fsync: 'never' as const, compaction: { logMinBytes: 16 * 1024, logToLiveRatio: 0 } };
    let store = await openFileStore(options);
    // Hot keys, so nearly every change has a previous entry; deletes, and a key with multi-byte UTF-8.
    const expected: Array<{ type: string; key: string; revision: number; value?: unknown; prev?: unknown }> = [];
    const current = new Map<string, unknown>();
    for (let i = 0; i < 3000; i++) {
      const key = i % 97 === 0 ? 'ключ/é' : `hot/${i % 40}`;
      if (i % 13 === 0 && current.has(key)) {
        const { revision } = await store.delete(key);
        expected.push({ type: 'delete', key, revision, prev: current.get(key) });
        current.delete(key);
      } else {
        const value = { i, pad: 'x'.repeat(i % 50) };
        const { revision } = await store.set(key, value);
        expected.push({ type: 'put', key, revision, value, prev: current.get(key) });
        current.set(key, value);
      }
    }
    await pollUntil('checkpoints to finish', () => (store.diskUsage.compacting ? undefined : true));
    for (let reopen = 0; reopen < 2; reopen++) {
      await store.close();
      store = await openFileStore(options);
      // Writes after the reopen make a checkpoint that copies the loaded checkpoint's history.
      for (let i = 0; i < 300; i++) {
        const key = `more/${reopen}/${i % 7}`;
        const value = { reopen, i };
        const { revision } = await store.set(key, value);
        expected.push({ type: 'put', key, revision, value, prev: current.get(key) });
        current.set(key, value);
      }
      await pollUntil('checkpoints to finish', () => (store.diskUsage.compacting ? undefined : true));
    }
    try {
      const watch = store.watch({ prefix: '', startRevision: 1, prevEntry: true });
      const seen: typeof expected = [];
      while (seen.length < expected.length) {
        for (const e of (await watch.next()).events) {
          seen.push({
            type: e.type,
            key: e.key,
            revision: e.revision,
            ...(e.entry === undefined ? {} : { value: JSON.parse(e.entry.valueJson) as unknown }),
            prev: e.prev === undefined ? undefined : (JSON.parse(e.prev.valueJson) as unknown),
          });
        }
      }
      watch.close();
      expect(seen).toEqual(expected);
      expect(dataFiles(dataDir).filter((f) => f.endsWith('.snap'))).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});

describe('file engine: a byte-bound history window across restarts', () => {
  test('holds the same changes after a restart as before, with multi-byte text and clears: packed or loaded, a change weighs the same', async () => {
    const dataDir = dirs.make();
    const feed = { history: { maxChanges: 100_000, maxBytes: 400_000 } };
    const options = { dataDir, fsync: 'never' as const, compaction: eager, feed };
    let store = await openFileStore(options);
    const texts = ['ascii', 'é', '日本語', '😀', 'ключ'];
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 1500; i++) {
          const text = texts[i % texts.length];
          const key = `${text}/${i % 60}`;
          if (i % 11 === 0) await store.delete(key);
          else await store.set(key, { text: text.repeat(1 + (i % 17)), round, i });
          // A clear now and then: its chunk is packed change by change (HISTORY blocks), not as columns.
          if (i % 500 === 499) await store.clear({ prefix: `${text}/1` });
        }
        await pollUntil('checkpoints to finish', () => (store.diskUsage.compacting ? undefined : true));
        const before = store.feedStatus;
        // The byte limit, not the count, bounds this window.
        expect(before.historyChanges).toBeLessThan(1500 * (round + 1));
        await store.close();
        store = await openFileStore(options);
        const after = store.feedStatus;
        expect({ round, oldest: after.oldestRevision, changes: after.historyChanges }).toEqual({
          round,
          oldest: before.oldestRevision,
          changes: before.historyChanges,
        });
      }
    } finally {
      await store.close();
    }
  });
});

test('a checkpoint whose header names an older format version than its records refuses to open, naming the record type and versions', async () => {
  const dataDir = dirs.make();
  const store = await openFileStore({ dataDir, fsync: 'never', compaction: eager });
  // A private lease (PRIVATE_LEASE_GRANT, since version 6) and enough changes for packed history (HISTORY_COLUMNS, since 7).
  await store.set('private', 1, { ttlMs: 600_000 });
  for (let i = 0; i < 1500; i++) await store.set(`k/${i % 50}`, { i });
  await pollUntil('the checkpoint', () => (store.diskUsage.compacting ? undefined : true));
  await store.close();
  const snap = path.join(dataDir, dataFiles(dataDir).find((f) => f.endsWith('.snap')) as string);
  const bytes = fs.readFileSync(snap);
  try {
    for (const [version, type, since] of [
      [5, 11, 6],
      [6, 12, 7],
    ]) {
      const older = Buffer.from(bytes);
      older.writeUInt16LE(version, 8);
      older.writeUInt32LE(crc32(older.subarray(0, 28)), 28);
      fs.writeFileSync(snap, older);
      const opened = await openFileStore({ dataDir, fsync: 'never' }).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(opened).toBeInstanceOf(CorruptDataError);
      expect((opened as Error).message).toMatch(
        new RegExp(`record type ${type} in a file of format version ${version} \\(first written by version ${since}\\)$`),
      );
    }
  } finally {
    fs.writeFileSync(snap, bytes);
  }
  // The same file as written opens.
  const reopened = await openFileStore({ dataDir, fsync: 'never' });
  await reopened.close();
});

describe("file engine: a checkpoint's keys written on a worker thread", () => {
  /** A key's state as the model keeps it: what a get gives. */
  interface Kept {
    value: unknown;
    createRevision: number;
    modRevision: number;
    version: number;
    lease: number;
  }

  async function entries(store: FileStore): Promise<Array<[string, Kept]>> {
    const out: Array<[string, Kept]> = [];
    for (const key of (await store.listKeys()).keys) {
      const e = await store.get(key);
      if (e)
        out.push([
          key,
          { value: e.value, createRevision: e.createRevision, modRevision: e.modRevision, version: e.version, lease: e.lease },
        ]);
    }
    return out;
  }

  function sorted(model: Map<string, Kept>): Array<[string, Kept]> {
    return [...model.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  test(
    'random sets (some on leases), deletes and clears, a view held across checkpoints, reopened between worker and in-thread ' +
      'checkpoints: every key, revision, version and lease as the model says',
    async () => {
      const dataDir = dirs.make();
      const { logger, lines } = capturingLogger();
      // A checkpoint every couple of hundred writes, so that the layers hold many changes, some to the same keys.
      const compaction = { logMinBytes: 24 * 1024, logToLiveRatio: 0 };
      const onWorker = { dataDir, fsync: 'never' as const, logger, compaction: { ...compaction, offThreadMinKeys: 0 } };
      const inThread = { dataDir, fsync: 'never' as const, logger, compaction: { ...compaction, offThreadMinKeys: 2 ** 40 } };
      const model = new Map<string, Kept>();
      let seed = 11;
      const rand = (n: number): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
        return seed % n;
      };
      // Multi-byte keys sort among ASCII ones by their bytes; sub-keys fall between keys.
      const keyOf = (i: number): string => [`k/${i}`, `k/é${i}`, `k/${i}/sub`, `日本/${i}`][i % 4];
      let store = await openFileStore(onWorker);
      // In an object: a round sets it, and the type checker would take it for undefined after each release here.
      const view: { held?: Awaited<ReturnType<FileStore['snapshot']>> } = {};
      const releaseHeld = (): void => {
        view.held?.release();
        view.held = undefined;
      };
      const settled = async (): Promise<void> => {
        await pollUntil('no checkpoint running or due', () => (store.diskUsage.compacting ? undefined : true));
        expect(await entries(store)).toEqual(sorted(model));
        const leases = new Map<number, string[]>();
        for (const [key, kept] of sorted(model)) if (kept.lease !== 0) leases.set(kept.lease, [...(leases.get(kept.lease) ?? []), key]);
        for (const [id, keys] of leases) expect((await store.leaseInfo(id, { keys: true })).keys).toEqual(keys);
      };
      const round = async (r: number): Promise<void> => {
        const lease = (await store.grantLease(600_000)).id;
        for (let n = 0; n < 400; n++) {
          const op = rand(40);
          const key = keyOf(rand(600));
          // A view taken half way through a round and held across the next checkpoint: that checkpoint's view then has
          // the held layer under its own, and a key changed in both must come from the newer.
          if (n === 150 && r % 2 === 0) {
            view.held?.release();
            view.held = await store.snapshot();
          }
          if (op < 28) {
            const value = { r, n, pad: 'p'.repeat(rand(60)) };
            const onLease = rand(4) === 0 ? lease : 0;
            const { revision } = await store.set(key, value, onLease === 0 ? {} : { lease: onLease });
            const before = model.get(key);
            model.set(key, {
              value,
              createRevision: before?.createRevision ?? revision,
              modRevision: revision,
              version: (before?.version ?? 0) + 1,
              lease: onLease,
            });
          } else if (op < 39) {
            await store.delete(key);
            model.delete(key);
          } else {
            const prefix = `k/${rand(10)}`;
            await store.clear({ prefix });
            for (const k of [...model.keys()]) if (k.startsWith(prefix)) model.delete(k);
          }
        }
        await settled();
      };
      const onWorkerSince = (from: number): Array<Record<string, unknown>> =>
        lines.slice(from).filter((l) => l.msg === 'compaction finished' && l.keysOnWorker === true);
      try {
        // Tables written by the worker, by the writer here from a table the worker wrote and loaded from disk, and by the
        // worker again from a table written here and loaded from disk.
        let mark = lines.length;
        for (let r = 0; r < 4; r++) await round(r);
        expect(onWorkerSince(mark).length).toBeGreaterThanOrEqual(3);
        releaseHeld();
        await store.close();
        store = await openFileStore(inThread);
        await settled();
        mark = lines.length;
        for (let r = 4; r < 6; r++) await round(r);
        expect(lines.slice(mark).filter((l) => l.msg === 'compaction finished').length).toBeGreaterThanOrEqual(3);
        expect(onWorkerSince(mark)).toEqual([]);
        releaseHeld();
        await store.close();
        store = await openFileStore(onWorker);
        await settled();
        mark = lines.length;
        for (let r = 6; r < 10; r++) await round(r);
        expect(onWorkerSince(mark).length).toBeGreaterThanOrEqual(3);
        releaseHeld();
        await store.close();
        store = await openFileStore({ dataDir });
        await settled();
      } finally {
        releaseHeld();
        await store.close();
      }
    },
    120_000,
  );

  test('a store closed while a worker copies a large table closes, leaves no partial file, and reopens with every key', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const big = (i: number, round: number): { i: number; round: number; pad: string } => ({ i, round, pad: 'x'.repeat(100_000) });
    // 1,500 keys of about 100 KB: a checkpoint of them copies 150 MB, long enough to be closed part way.
    let store = await openFileStore({
      dataDir,
      fsync: 'never',
      compaction: { logMinBytes: Number.MAX_SAFE_INTEGER, minBytes: Number.MAX_SAFE_INTEGER },
    });
    for (let i = 0; i < 1500; i++) await store.set(`big/${String(i).padStart(4, '0')}`, big(i, 0));
    await store.close();
    // The first checkpoint (every key changed: written here) makes the table the next one copies.
    const options = { dataDir, fsync: 'never' as const, logger, compaction: { logMinBytes: 1024, logToLiveRatio: 0, offThreadMinKeys: 0 } };
    store = await openFileStore(options);
    await store.set('small', 0);
    await pollUntil('the first checkpoint', () =>
      !store.diskUsage.compacting && lines.some((l) => l.msg === 'compaction finished') ? true : undefined,
    );
    await store.close();
    const expected = await (async () => {
      const s = await openFileStore({ dataDir });
      try {
        return await dump(s);
      } finally {
        await s.close();
      }
    })();
    // Reopened, a write starts a checkpoint at once, on the worker; the store is closed once the worker's file has grown.
    let caught = 0;
    for (let attempt = 0; attempt < 5 && caught === 0; attempt++) {
      const mark = lines.length;
      store = await openFileStore(options);
      // Past the 1 KiB of log that makes a checkpoint due.
      for (let i = 0; i < 20; i++) await store.set('small', { attempt: attempt + 1, i, pad: 'p'.repeat(100) });
      // Looked at every millisecond: the worker copies at hundreds of MB a second.
      let tmp = { size: 0 };
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 1))) {
        const file = fs.readdirSync(dataDir).find((f) => f.endsWith('.snap.tmp'));
        tmp = { size: file === undefined ? 0 : fs.statSync(path.join(dataDir, file)).size };
        if (tmp.size > 8 * 1024 * 1024 || lines.slice(mark).some((l) => l.msg === 'compaction finished')) break;
      }
      // The file is watched while the store closes: a worker left to finish would take it past 150 MB of keys.
      let largest = tmp.size;
      let closed = false;
      const watching = (async () => {
        while (!closed) {
          const file = fs.readdirSync(dataDir).find((f) => f.endsWith('.snap.tmp'));
          if (file !== undefined) largest = Math.max(largest, fs.statSync(path.join(dataDir, file), { throwIfNoEntry: false })?.size ?? 0);
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      const closing = Date.now();
      await store.close();
      closed = true;
      await watching;
      expect(Date.now() - closing).toBeLessThan(10_000);
      const finished = lines.slice(mark).find((l) => l.msg === 'compaction finished');
      if (finished === undefined) {
        caught++;
        expect(tmp.size).toBeGreaterThan(8 * 1024 * 1024);
        expect(largest).toBeLessThan(100 * 1024 * 1024);
        expect(lines.slice(mark).some((l) => l.msg === 'compaction started')).toBe(true);
      }
      expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      const again = await openFileStore({ dataDir });
      try {
        const rows = await dump(again);
        expect(rows.filter(([key]) => key !== 'small')).toEqual(expected.filter(([key]) => key !== 'small'));
        expect(rows.find(([key]) => key === 'small')?.[1]).toEqual({ attempt: attempt + 1, i: 19, pad: 'p'.repeat(100) });
      } finally {
        await again.close();
      }
    }
    expect(caught).toBe(1);
  }, 120_000);

  test('a worker that fails (out of memory here) is logged, and this and every later checkpoint are written on the serving thread', async () => {
    const dataDir = dirs.make();
    const { logger, lines } = capturingLogger();
    const store = await openFileStore({
      dataDir,
      fsync: 'never',
      logger,
      compaction: {
        logMinBytes: 2048,
        logToLiveRatio: 0,
        offThreadMinKeys: 0,
        workerResourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1 },
      },
    });
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 40; i++) await store.set(`k/${i}`, { round, pad: 'p'.repeat(100) });
        await pollUntil('a checkpoint', () => (store.diskUsage.compacting ? undefined : true));
      }
      const failures = lines.filter((l) => String(l.msg).startsWith("the checkpoint's worker thread"));
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({
        level: 50,
        msg: "the checkpoint's worker thread failed: this and every later checkpoint of this process are written on the serving thread",
        err: { message: expect.stringMatching(/^the checkpoint's worker thread (failed|exited|could not start)/) as unknown },
      });
      const finished = lines.filter((l) => l.msg === 'compaction finished');
      expect(finished.length).toBeGreaterThanOrEqual(3);
      expect(finished.every((l) => l.keysOnWorker === false)).toBe(true);
      expect(lines.some((l) => String(l.msg).startsWith('compaction failed'))).toBe(false);
      expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('the compiled store (dist/, as the server runs it) starts its worker from the compiled module', () => {
    const dataDir = dirs.make();
    const script = `
      const { openFileStore } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/store/file/index.js'))});
      (async () => {
        const lines = [];
        const logger = require('pino')({ level: 'info' }, { write: (l) => lines.push(JSON.parse(l)) });
        const store = await openFileStore({ dataDir: process.argv[1], fsync: 'never', logger, compaction: { logMinBytes: 1024, logToLiveRatio: 0, offThreadMinKeys: 0 } });
        for (let r = 0; r < 4; r++) {
          for (let i = 0; i < 30; i++) await store.set('k/' + i, { r, pad: 'p'.repeat(100) });
          while (store.diskUsage.compacting) await new Promise((f) => setTimeout(f, 10));
        }
        await store.close();
        const finished = lines.filter((l) => l.msg === 'compaction finished');
        const failed = lines.filter((l) => l.level >= 50);
        console.log(JSON.stringify({ onWorker: finished.filter((l) => l.keysOnWorker).length, failed: failed.map((l) => l.msg) }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = execFileSync(process.execPath, ['-e', script, dataDir], { encoding: 'utf8', timeout: 60_000 });
    const result = JSON.parse(out.trim().split('\n').pop() as string) as { onWorker: number; failed: string[] };
    expect(result.failed).toEqual([]);
    expect(result.onWorker).toBeGreaterThanOrEqual(2);
  });

  testWithSmallDisk()(
    'a disk that fills as the worker writes: the attempt fails naming the error (ENOSPC, no stack), leaves no partial file, and the store goes on',
    async () => {
      const disk = mountSmallDisk(16 * 1024 * 1024);
      const dataDir = path.join(disk.dir, 'data');
      const { logger, lines } = capturingLogger();
      const options = { dataDir, fsync: 'never' as const, logger, feed: { history: { maxChanges: 1 } } };
      try {
        // About 2.5 MB of keys, checkpointed (written here: every key is new)...
        let store = await openFileStore({
          ...options,
          compaction: { logMinBytes: Number.MAX_SAFE_INTEGER, minBytes: Number.MAX_SAFE_INTEGER },
        });
        for (let i = 0; i < 25; i++) await store.set(`big/${i}`, { i, pad: 'x'.repeat(100_000) });
        await store.close();
        const compaction = { logMinBytes: 512 * 1024, logToLiveRatio: 0, offThreadMinKeys: 0, retryAfterMs: 60_000 };
        store = await openFileStore({ ...options, compaction });
        await store.set('small', 0);
        await pollUntil('the first checkpoint', () => (lines.some((l) => l.msg === 'compaction finished') ? true : undefined));
        await pollUntil('the first checkpoint to settle', () => (store.diskUsage.compacting ? undefined : true));
        try {
          // ...then the disk filled to 1.5 MB short of full: room for the changes below, not for the next checkpoint.
          const free = fs.statfsSync(disk.dir);
          fs.writeFileSync(path.join(disk.dir, 'filler'), Buffer.alloc(free.bavail * free.bsize - 1536 * 1024));
          const mark = lines.length;
          for (let i = 0; i < 8; i++) await store.set(`big/${i}`, { i, pad: 'y'.repeat(100_000) });
          const failed = await pollUntil('the failed attempt', () =>
            lines.slice(mark).find((l) => String(l.msg).startsWith('compaction failed')),
          );
          expect(failed).toMatchObject({ level: 50, err: { code: 'ENOSPC', syscall: 'write' } });
          expect((failed.err as Record<string, unknown>).stack).toBeUndefined();
          // On the worker, and not taken for the worker's own failure.
          expect(lines.slice(mark).find((l) => l.msg === 'compaction started')).toBeDefined();
          expect(lines.slice(mark).some((l) => String(l.msg).startsWith("the checkpoint's worker thread"))).toBe(false);
          expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
          expect(await store.get('big/24')).toMatchObject({ value: { i: 24 } });
          expect(await store.get('big/3')).toMatchObject({ value: { i: 3, pad: 'y'.repeat(100_000) } });
        } finally {
          await store.close();
        }
      } finally {
        disk.unmount();
      }
    },
    60_000,
  );
});
