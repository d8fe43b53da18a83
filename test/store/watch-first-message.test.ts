/**
 * A watch's first batch comes at once: a watch from a revision in the
 * history window whose catch-up finds nothing says the revision it caught
 * up to (not only at the first progress, an interval later), and so does
 * one from the next revision (a client resuming after the last revision it
 * was sent, or after the one it listed at). A client that loses the stream
 * before anything matching happened then resumes from where the server had
 * got, not from a start that may have left the window meanwhile.
 */
import { type FileStore, type FileStoreOptions, openFileStore } from '../../src/store/file';
import type { Watch, WatchBatch } from '../../src/store/key-value-store';
import { tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

async function withStore<T>(options: Partial<FileStoreOptions>, run: (store: FileStore) => Promise<T>): Promise<T> {
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'never', ...options });
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

/** The watch's next batch, or a failure naming `what` if it does not come within `ms`. */
async function nextWithin(watch: Watch, ms: number, what: string): Promise<WatchBatch> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([watch.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

// Progress an hour apart: a first batch within a second cannot be the progress timer's.
const HOURLY_PROGRESS = { feed: { progressIntervalMs: 3_600_000 } };

test('a watch from a revision in the window whose catch-up finds nothing gets its first batch at once, current to the last revision', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    for (let i = 0; i < 50; i++) await store.set(`q/k${i % 10}`, i);
    const targets: Array<[{ key: string } | { prefix: string }, string]> = [
      [{ key: 'q/none' }, 'q/none'],
      [{ prefix: 'q/none/' }, 'q/none/x'],
    ];
    for (const [target, written] of targets) {
      const current = store.revision;
      const watch = store.watch({ ...target, startRevision: 40 });
      try {
        expect(await nextWithin(watch, 1000, 'the first batch')).toEqual({ events: [], revision: current });
        // Live from there: the next change of its key comes, and nothing before it.
        const { revision } = await store.set(written, 'hello');
        const batch = await nextWithin(watch, 1000, 'the change');
        expect(batch.revision).toBe(revision);
        expect(batch.events.map((e) => [e.type, e.key, e.revision])).toEqual([['put', written, revision]]);
      } finally {
        watch.close();
      }
    }
  });
});

test('a catch-up that found events still ends current to the last revision, not to its last event', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    await store.set('q/one', 1);
    for (let i = 0; i < 20; i++) await store.set(`q/other${i}`, i);
    const watch = store.watch({ key: 'q/one', startRevision: 1 });
    try {
      const batch = await nextWithin(watch, 1000, 'the first batch');
      expect(batch.events.map((e) => [e.key, e.revision])).toEqual([['q/one', 1]]);
      expect(batch.revision).toBe(21);
    } finally {
      watch.close();
    }
  });
});

test('a watch from the next revision (a client resuming after the last one it was sent) says so at once; one further on hears at progress', async () => {
  await withStore({ feed: { progressIntervalMs: 1000 } }, async (store) => {
    for (let i = 0; i < 5; i++) await store.set('f/k', i);
    const next = store.watch({ key: 'f/k', startRevision: 6 });
    const further = store.watch({ key: 'f/k', startRevision: 9 });
    try {
      // Current to 5 from the start, well before the first progress (an interval later).
      expect(await nextWithin(next, 500, 'the first batch')).toEqual({ events: [], revision: 5 });
      // Nothing says the store will reach 9: progress says where it is, as before.
      expect(await nextWithin(further, 5000, 'a progress batch')).toEqual({ events: [], revision: 5 });
      await store.set('f/k', 5);
      const batch = await nextWithin(next, 1000, 'the change at its start');
      expect(batch.events.map((e) => e.revision)).toEqual([6]);
    } finally {
      next.close();
      further.close();
    }
  });
});

test('a watch from the next revision whose first change is already queued gets that change first, not an empty batch', async () => {
  await withStore(HOURLY_PROGRESS, async (store) => {
    await store.set('g/k', 0);
    const watch = store.watch({ key: 'g/k', startRevision: 2 });
    try {
      await store.set('g/k', 1);
      const batch = await nextWithin(watch, 1000, 'the first batch');
      expect(batch.events.map((e) => e.revision)).toEqual([2]);
    } finally {
      watch.close();
    }
  });
});
