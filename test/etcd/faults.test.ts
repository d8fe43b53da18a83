/**
 * etcd members dying under load: two kv frontends take writes from
 * concurrent clients while one etcd member is killed with SIGKILL (and
 * restarted), then the leader is. Afterwards etcd's own history (a watch
 * from before the first write) must hold every acknowledged write with the
 * value and revision it was acknowledged with, revisions must only ever go
 * up, and writes must have resumed after the election. The gap (from the
 * leader's kill to the first acknowledged write after it) is reported.
 */
import { KvClient, KvError, type KvWatchEvent } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();

interface Ack {
  key: string;
  value: number;
  revision: number;
  at: number;
}

describeEtcd('etcd members killed while two frontends take writes', () => {
  let cluster: EtcdCluster;
  let frontends: Frontend[] = [];
  const clients: KvClient[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster({ watchProgressMs: 1000 });
    const prefix = `faults-${process.pid}/`;
    // A write caught in the election waits out this deadline (its answer is lost with the old leader): it bounds the gap.
    const args = ['--etcd-timeout-ms', '2000'];
    frontends = await Promise.all([startFrontend(cluster, prefix, args), startFrontend(cluster, prefix, args)]);
  });
  afterAll(async () => {
    for (const kv of clients) kv.close();
    await Promise.all(frontends.map((f) => f.server.kill()));
    await cluster?.stop();
  });

  test('no acknowledged write is lost or changed, revisions never go back, writes resume after the election', async () => {
    const [a, b] = frontends;
    const probe = new KvClient([a.address, b.address]);
    clients.push(probe);
    const start = (await probe.set('faults/start', true)) + 1;

    const acks: Ack[] = [];
    let unknown = 0;
    let running = true;
    // Four writers, two per frontend, each on keys of its own, one write at a time.
    const writers = [a, a, b, b].map(async (frontend, w) => {
      const kv = new KvClient([frontend.address], { deadlineMs: 8000 });
      clients.push(kv);
      let lastRevision = 0;
      for (let i = 0; running; i++) {
        const key = `faults/w${w}/${i % 3}`;
        const value = w * 1_000_000 + i;
        try {
          const revision = await kv.set(key, value);
          // One writer's writes follow each other, so their revisions must too.
          expect(revision).toBeGreaterThan(lastRevision);
          lastRevision = revision;
          acks.push({ key, value, revision, at: Date.now() });
        } catch (error) {
          // UNAVAILABLE: etcd did not answer (the write may or may not have happened); NOT_SENT (retried by the SDK until its
          // deadline) or DEADLINE_EXCEEDED after such retries: nothing, or maybe nothing, applied; anything else is a failure.
          if (!(error instanceof KvError) || !['UNAVAILABLE', 'NOT_SENT', 'DEADLINE_EXCEEDED'].includes(error.reason)) throw error;
          unknown++;
        }
      }
    });
    const acksAfter = (t: number): number => acks.filter((x) => x.at > t).length;
    const run = async (ms: number): Promise<void> => {
      const from = Date.now();
      await pollUntil(
        `writes acknowledged for ${ms} ms`,
        () => (Date.now() - from >= ms && acksAfter(from) > 0 ? true : undefined),
        30_000,
      );
    };

    await run(1000);
    const leader = await cluster.leader();
    const follower = (leader + 1) % 3;
    const followerKilledAt = Date.now();
    await cluster.kill(follower);
    await run(1500);
    const afterFollower = acksAfter(followerKilledAt);
    await cluster.restart(follower);
    await run(500);

    const leaderKilledAt = Date.now();
    await cluster.kill(leader);
    const newLeader = await cluster.leader();
    const electedMs = Date.now() - leaderKilledAt;
    // A write answered just after the kill may have committed just before it: the gap is the longest stretch without an acknowledgement.
    await pollUntil(
      'writes acknowledged again after the leader died',
      () => (acks.some((x) => x.at > leaderKilledAt + electedMs) ? true : undefined),
      30_000,
    );
    await run(1500);
    await cluster.restart(leader);
    running = false;
    await Promise.all(writers);
    const ackTimes = [leaderKilledAt, ...acks.map((x) => x.at).filter((t) => t > leaderKilledAt)];
    const gapMs = Math.max(...ackTimes.slice(1).map((t, i) => t - ackTimes[i]));

    // etcd's history of every change since the start: each acknowledged write is in it, unchanged.
    const history = new Map<number, KvWatchEvent[]>();
    const watch = probe.watch({ prefix: 'faults/w', startRevision: start });
    const last = Math.max(...acks.map((x) => x.revision));
    for await (const event of watch) {
      const at = history.get(event.revision) ?? [];
      at.push(event);
      history.set(event.revision, at);
      if (event.revision >= last) break;
    }
    const revisions = [...history.keys()];
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    for (const ack of acks) {
      expect(history.get(ack.revision)?.map((e) => [e.key, e.entry?.value])).toEqual([[ack.key, ack.value]]);
    }
    // Every key ends with its last acknowledged value, or a later write whose answer was lost.
    for (const key of new Set(acks.map((x) => x.key))) {
      const lastAck = acks.filter((x) => x.key === key).at(-1) as Ack;
      expect((await probe.get(key))?.modRevision).toBeGreaterThanOrEqual(lastAck.revision);
    }
    expect(afterFollower).toBeGreaterThan(0);
    expect(newLeader).not.toBe(leader);
    process.stdout.write(
      `etcd fault run: ${acks.length} writes acknowledged, ${unknown} reported UNAVAILABLE; ` +
        `${afterFollower} acknowledged while a follower was down; leader ${leader} killed, member ${newLeader} leads ` +
        `${electedMs} ms later; the longest time without an acknowledged write after the kill: ${gapMs} ms\n`,
    );
  });
});

describeEtcd('a write during an outage of the only etcd member', () => {
  let cluster: EtcdCluster;
  let frontend: Frontend | undefined;
  const clients: KvClient[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    frontend = await startFrontend(cluster, `outage-${process.pid}/`, ['--etcd-timeout-ms', '1000', '--metrics-listen', '127.0.0.1:0']);
  });
  afterAll(async () => {
    for (const kv of clients) kv.close();
    await frontend?.server.kill();
    await cluster?.stop();
  });

  test('is NOT_SENT while no member can be reached (nothing applied), and the SDK retries it until etcd is back: applied once', async () => {
    const address = (frontend as Frontend).address;
    const server = (frontend as Frontend).server;
    const setsAnswered = async (): Promise<number> => {
      const text = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
      return [...text.matchAll(/^kv_grpc_server_handled_total\{method="Set",code="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const raw = new KvClient(address, { deadlineMs: 5000, retry: { attempts: 1 } });
    const kv = new KvClient(address, { deadlineMs: 20_000 });
    clients.push(raw, kv);
    await kv.set('outage/before', 0);
    await cluster.kill(0);
    // Without retries the server's answer shows: UNAVAILABLE, reason NOT_SENT (the frontend could not reach etcd).
    const setsBefore = await setsAnswered();
    const refused = (await raw.set('outage/raw', 1).catch((e: unknown) => e)) as KvError;
    expect(refused).toBeInstanceOf(KvError);
    expect({ code: refused.code, reason: refused.reason }).toEqual({ code: 14, reason: 'NOT_SENT' });
    // retry.attempts 1: sent once, not once more for NOT_SENT.
    expect((await setsAnswered()) - setsBefore).toBe(1);
    // The SDK tries such a write again until its deadline: it lands once etcd is back.
    const pending = kv.set('outage/k', 'v');
    let settled = false;
    void pending.finally(() => (settled = true)).catch(() => undefined);
    // A negative check: still pending while etcd is down (the SDK keeps trying, within its 20 s deadline).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(settled).toBe(false);
    await cluster.restart(0);
    const revision = await pending;
    const entry = await kv.get('outage/k');
    expect(entry).toMatchObject({ value: 'v', modRevision: revision, version: 1 });
    // The write refused without retries was never applied.
    expect(await kv.get('outage/raw')).toBeUndefined();
  });
});

describeEtcd("an Update while etcd is down, past its caller's deadline", () => {
  let cluster: EtcdCluster;
  let frontend: Frontend | undefined;
  const clients: KvClient[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    // An --etcd-timeout-ms far past the caller's deadline: the frontend's own retries must stop at the caller's.
    frontend = await startFrontend(cluster, `late-${process.pid}/`, ['--etcd-timeout-ms', '20000', '--metrics-listen', '127.0.0.1:0']);
  });
  afterAll(async () => {
    for (const kv of clients) kv.close();
    await frontend?.server.kill();
    await cluster?.stop();
  });

  test('is not sent once the caller stopped waiting: etcd back, the key is as the caller was told', async () => {
    const server = (frontend as Frontend).server;
    const updatesAnswered = async (): Promise<number> => {
      const text = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
      return [...text.matchAll(/^kv_grpc_server_handled_total\{method="Update",code="\w+"\} (\d+)$/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    };
    const kv = new KvClient((frontend as Frontend).address, { deadlineMs: 20_000, retry: { attempts: 1 } });
    clients.push(kv);
    await kv.set('late/k', { n: 0 });
    const before = await updatesAnswered();
    await cluster.kill(0);
    const failed = (await kv.update('late/k', { x: 1 }, { deadlineMs: 1500 }).catch((e: unknown) => e)) as KvError;
    expect(failed).toBeInstanceOf(KvError);
    expect(['DEADLINE_EXCEEDED', 'NOT_SENT']).toContain(failed.reason);
    await cluster.restart(0);
    // The frontend has finished with the call (it went on reading etcd for up to --etcd-timeout-ms, then wrote, before the fix).
    await pollUntil('the frontend to finish the Update', async () => ((await updatesAnswered()) > before ? true : undefined), 30_000);
    expect(await kv.get('late/k')).toMatchObject({ value: { n: 0 }, version: 1 });
  });
});
