/**
 * A watch over the etcd engine from a start_revision etcd has not reached
 * (a client resuming after the last revision it was given, or from further
 * on) says at once where it stands, as the file engine does: not only at
 * etcd's first progress response, which is minutes away here (etcd's
 * default interval is 10 minutes).
 */
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';

const describeEtcd = describeWithEtcd();

describeEtcd("a watch from a revision etcd has not reached, with etcd's progress far off", () => {
  let cluster: EtcdCluster;
  let store: EtcdStore | undefined;

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1, watchProgressMs: 600_000 });
    store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: `first-${process.pid}/` });
  });
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  test('from the next revision: its first batch comes at once, current to the revision before its start; then its events', async () => {
    let { revision } = await store!.set('k', 1);
    // The second time, the revision before the start is a write of the other key (not watched).
    for (const key of ['k', 'other']) {
      const watch = store!.watch({ key, startRevision: revision + 1 });
      try {
        expect(await watch.next()).toEqual({ events: [], revision });
        ({ revision } = await store!.set('k', 2));
        if (key === 'other') ({ revision } = await store!.set('other', 2));
        expect(await watch.next()).toMatchObject({ events: [{ type: 'put', key, revision }], revision });
      } finally {
        watch.close();
      }
    }
  });

  test('from further on: at once, current to the revision before its start', async () => {
    const { revision } = await store!.set('far', 1);
    const watch = store!.watch({ key: 'far', startRevision: revision + 10 });
    try {
      expect(await watch.next()).toEqual({ events: [], revision: revision + 9 });
    } finally {
      watch.close();
    }
  });

  test('from a revision with events: the events come first, with no empty batch before them', async () => {
    const { revision } = await store!.set('h', 1);
    await store!.set('h', 2);
    const watch = store!.watch({ key: 'h', startRevision: revision });
    try {
      const batch = await watch.next();
      expect(batch.events.map((e) => e.revision)).toEqual([revision, revision + 1]);
    } finally {
      watch.close();
    }
  });
});
