/**
 * A watch over the etcd engine that loses its etcd member and, when it
 * resumes by itself, finds the changes it had still to send compacted away:
 * it ends with COMPACTED, as it must (never a silent gap), and the message
 * names the revision it was resuming from as its own, not as a
 * start_revision the client sent (it sent none).
 */
import { Etcd3 } from 'etcd3';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';

const describeEtcd = describeWithEtcd();

describeEtcd('a watch resuming by itself past a compaction', () => {
  let cluster: EtcdCluster;
  let store: EtcdStore | undefined;
  let raw: Etcd3 | undefined;

  beforeAll(async () => {
    cluster = await startEtcdCluster();
  });
  afterAll(async () => {
    await store?.close();
    raw?.close();
    await cluster?.stop();
  });

  test('ends with COMPACTED naming its own resume point', async () => {
    const prefix = `resume-${process.pid}/`;
    // Member 0 alone, and long enough a timeout that the watch keeps trying while member 0 is down.
    store = await openEtcdStore({ endpoints: [cluster.endpoints[0]], prefix, callTimeoutMs: 60_000 });
    raw = new Etcd3({ hosts: [cluster.endpoints[1], cluster.endpoints[2]] });
    const watch = store.watch({ key: 'w' });
    const { revision: first } = await store.set('w', 1);
    for (;;) {
      const batch = await watch.next();
      if (batch.events.length > 0) {
        expect(batch.events[0]).toMatchObject({ type: 'put', key: 'w', entry: { modRevision: first } });
        break;
      }
    }

    await cluster.kill(0);
    // The changes the watch has still to send, then compacted away, while it cannot reach its member.
    await raw.put(`${prefix}w`).value('2');
    const { header } = await raw.put(`${prefix}w`).value('3').exec();
    const compactedTo = Number(header.revision);
    await raw.kv.compact({ revision: compactedTo, physical: true });
    await cluster.restart(0);

    // Progress batches may come first (none with events: those events are gone).
    let error: unknown;
    for (;;) {
      const batch = await watch.next().catch((e: unknown) => {
        error = e;
        return undefined;
      });
      if (batch === undefined) break;
      expect(batch.events).toEqual([]);
    }
    expect(error).toMatchObject({ code: 'COMPACTED', startRevision: first + 1, oldestRevision: compactedTo + 1 });
    expect((error as Error).message).toBe(
      `the watch lost its stream to the store and could not resume it: revision ${first + 1}, the next it had to send, is older ` +
        `than the change history kept (oldest revision available: ${compactedTo + 1}); read the current state again, then watch ` +
        "from the revision it was read at + 1 (of a List in pages, the first page's)",
    );
    watch.close();
  }, 90_000);
});
