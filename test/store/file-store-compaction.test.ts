/** The file engine compacting its log while serving. */
import fs from 'node:fs';
import path from 'node:path';
import { type FileStoreOptions, openFileStore } from '../../src/store/file';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

import { dataBytes, dump } from './file-store-support';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

describe('file engine: compaction', () => {
  const small: FileStoreOptions['compaction'] = { minBytes: 16 * 1024, deadToLiveRatio: 1 };

  test('after churn the disk stays within ~2x live data and everything survives reopen', async () => {
    const dataDir = dirs.make();
    // A window of one change: checkpoints carry the history window too (bounded on its own; a test below).
    let store = await openFileStore({ dataDir, fsync: 'never', compaction: small, feed: { history: { maxChanges: 1 } } });
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

  test('a checkpoint pauses for writes or reads going on, and not at all while the store is idle', async () => {
    // 20,000 keys of 500 bytes in the logs, no checkpoint yet; reopened with a checkpoint due at once.
    const idleDir = dirs.make();
    let store = await openFileStore({ dataDir: idleDir, fsync: 'never', compaction: { logMinBytes: 2 ** 40, minBytes: 2 ** 40 } });
    for (let i = 0; i < 20_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => store.set(`k${i + j}`, 'v'.repeat(500))));
    }
    await store.close();
    const busyDir = dirs.make();
    fs.cpSync(idleDir, busyDir, { recursive: true });
    const readingDir = dirs.make();
    fs.cpSync(idleDir, readingDir, { recursive: true });
    type Load = 'idle' | 'writes' | 'reads';
    const compactionOf = async (dataDir: string, load: Load): Promise<{ ok: boolean; pausedSeconds: number; ops: number }> => {
      let outcome: { ok: boolean; pausedSeconds: number } | undefined;
      const observer = {
        synced: () => undefined,
        committed: () => undefined,
        compacted: (o: { ok: boolean; pausedSeconds: number }) => (outcome ??= o),
      };
      const opened = await openFileStore({ dataDir, fsync: 'never', compaction: { logMinBytes: 1024, logToLiveRatio: 0 }, observer });
      let ops = 0;
      while (load === 'writes' && outcome === undefined) await opened.set(`during-${ops++}`, ops);
      while (load === 'reads' && outcome === undefined) {
        expect((await opened.get(`k${ops++ % 20_000}`))?.value).toBe('v'.repeat(500));
        // A get answers in a microtask: without a turn of the event loop now and then, nothing else would ever run.
        if (ops % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await pollUntil('the checkpoint', () => outcome);
      await opened.close();
      return { ...(outcome as { ok: boolean; pausedSeconds: number }), ops };
    };
    expect(await compactionOf(idleDir, 'idle')).toMatchObject({ ok: true, pausedSeconds: 0 });
    for (const [dataDir, load] of [
      [busyDir, 'writes'],
      [readingDir, 'reads'],
    ] as const) {
      const busy = await compactionOf(dataDir, load);
      expect(busy.ok).toBe(true);
      expect(busy.ops).toBeGreaterThan(0);
      expect(busy.pausedSeconds).toBeGreaterThan(0);
    }
    // All came back with every key, and the writes made during the checkpoint.
    for (const dataDir of [idleDir, busyDir, readingDir]) {
      store = await openFileStore({ dataDir });
      expect((await store.get('k19999'))?.value).toBe('v'.repeat(500));
      if (dataDir === busyDir) expect(await store.get('during-0')).toMatchObject({ value: 1 });
      await store.close();
    }
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
