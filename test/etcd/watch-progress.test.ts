/**
 * An idle watch over the etcd engine hears from its frontend at least every
 * --watch-progress-ms, as on the file engine, whatever etcd's own progress
 * interval: etcd's is minutes away here (its default is 10 minutes), and
 * even a short one skips the interval after one in which etcd sent the
 * watcher events — the revision before a watch's start too, which every
 * kv watch is sent and drops (etcd-watch.ts). A client that heard nothing
 * for twice its interval took the stream for broken and resumed it, and a
 * watch resumed right after an event it was given then went silent again:
 * `kvctl watch` said "lost the watch stream" every 10 s on a quiet prefix.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { KvClient, type KvWatchEvent } from '@kv/client';
import { KeyValueServiceClient, type WatchResponse } from '../../clients/typescript/src/gen/kv/v1/kv';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import type { Watch, WatchBatch } from '../../src/store/key-value-store';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();
const PROGRESS_MS = 300;

/** The watch's next batch, or a failure naming what was awaited once `withinMs` has passed. */
async function nextWithin(watch: Watch, withinMs: number, what: string): Promise<WatchBatch> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no batch within ${withinMs} ms: ${what}`)), withinMs);
  });
  try {
    return await Promise.race([watch.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

describeEtcd("an idle watch over etcd, with etcd's progress far off", () => {
  let cluster: EtcdCluster;
  let store: EtcdStore | undefined;

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1, watchProgressMs: 600_000 });
    store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: `progress-${process.pid}/`, watchProgressMs: PROGRESS_MS });
  });
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  test('says how often it hears (the first message of a stream gives it)', () => {
    expect(store!.watchProgressMs).toBe(PROGRESS_MS);
  });

  test('resumed right after a revision it was given: progress batches at that revision, then the next event', async () => {
    const { revision } = await store!.set('k', 1);
    const watch = store!.watch({ key: 'k', startRevision: revision + 1 });
    try {
      expect(await nextWithin(watch, 5 * PROGRESS_MS, 'where the watch starts')).toEqual({ events: [], revision });
      for (let i = 0; i < 3; i++) {
        expect(await nextWithin(watch, 5 * PROGRESS_MS, `progress ${i + 1}`)).toEqual({ events: [], revision });
      }
      const next = await store!.set('k', 2);
      let batch = await nextWithin(watch, 5 * PROGRESS_MS, 'the event');
      while (batch.events.length === 0) batch = await nextWithin(watch, 5 * PROGRESS_MS, 'the event');
      expect(batch).toMatchObject({ events: [{ type: 'put', key: 'k', revision: next.revision }], revision: next.revision });
    } finally {
      watch.close();
    }
  });

  test("from now, when the store's last change is one it watches: progress batches at that revision", async () => {
    const { revision } = await store!.set('now', 1);
    const watch = store!.watch({ prefix: 'now' });
    try {
      expect(await nextWithin(watch, 5 * PROGRESS_MS, 'where the watch starts')).toEqual({ events: [], revision });
      expect(await nextWithin(watch, 5 * PROGRESS_MS, 'progress')).toEqual({ events: [], revision });
    } finally {
      watch.close();
    }
  });

  test('after an event: progress batches at its revision, never less', async () => {
    const watch = store!.watch({ key: 'e' });
    try {
      await nextWithin(watch, 5 * PROGRESS_MS, 'where the watch starts');
      const { revision } = await store!.set('e', 1);
      expect(await nextWithin(watch, 5 * PROGRESS_MS, 'the event')).toMatchObject({ events: [{ key: 'e', revision }], revision });
      expect(await nextWithin(watch, 5 * PROGRESS_MS, 'progress')).toEqual({ events: [], revision });
    } finally {
      watch.close();
    }
  });

  test("through a frontend: the stream's first message gives --watch-progress-ms, and a quiet stream is not taken for a broken one", async () => {
    const frontend: Frontend = await startFrontend(cluster, `progress-server-${process.pid}/`, ['--watch-progress-ms', '1000']);
    const kv = new KvClient(frontend.address, { deadlineMs: 5000 });
    const raw = new KeyValueServiceClient(frontend.address, credentials.createInsecure());
    try {
      const revision = await kv.set('q/x', 1);
      const messages: WatchResponse[] = [];
      const call = raw.watch({ prefix: 'q/', startRevision: revision + 1, prevEntry: false, fragment: false }, new Metadata());
      call.on('data', (m: WatchResponse) => messages.push(m));
      call.on('error', () => undefined);
      try {
        await pollUntil('three messages', () => messages.length >= 3 || undefined, 5000);
      } finally {
        call.cancel();
      }
      expect(messages.slice(0, 3).map((m) => [m.events.length, m.revision, m.progressIntervalMs])).toEqual([
        [0, revision, 1000],
        [0, revision, 0],
        [0, revision, 0],
      ]);

      // The SDK takes a stream silent for twice the interval its first message gives, plus a second (3 s here), for a
      // broken one. Waiting longer than that is the test: nothing may happen meanwhile.
      const resumes: string[] = [];
      const watch = kv.watch({ prefix: 'q/', startRevision: revision + 1, onResume: (c) => resumes.push(c.state) });
      const events: KvWatchEvent[] = [];
      const reading = (async () => {
        for await (const event of watch) {
          events.push(event);
          return;
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 5000));
      expect(resumes).toEqual([]);
      const next = await kv.set('q/x', 2);
      await reading;
      expect(events).toMatchObject([{ type: 'put', key: 'q/x', revision: next }]);
    } finally {
      raw.close();
      kv.close();
      await frontend.server.kill();
    }
  }, 30_000);
});
