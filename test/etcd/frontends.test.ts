/**
 * Several kv frontends over one real 3-member etcd cluster: what one
 * frontend writes, another serves and watches; a client given several
 * frontends carries on when one is killed; a watch resumes across a
 * frontend restart without a gap or a repeat.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { KvClient, KvError, type KvWatchEvent } from '@kv/client';
import {
  KeyValueServiceClient,
  type GrantLeaseRequest,
  type GrantLeaseResponse,
  type KeepAliveResponse,
  type SetRequest,
  type SetResponse,
} from '../../clients/typescript/src/gen/kv/v1/kv';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { findTool } from '../support/find-tool';
import { makeTempDir } from '../support/temp-dirs';
import { REPO_ROOT } from '../support/server-process';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();

describeEtcd('frontends over etcd', () => {
  let cluster: EtcdCluster;
  let a: Frontend;
  let b: Frontend;
  const clients: KvClient[] = [];
  const client = (addresses: string[], options?: ConstructorParameters<typeof KvClient>[1]): KvClient => {
    const kv = new KvClient(addresses, { deadlineMs: 5000, ...options });
    clients.push(kv);
    return kv;
  };

  beforeAll(async () => {
    cluster = await startEtcdCluster({ watchProgressMs: 1000 });
    const prefix = `frontends-${process.pid}/`;
    [a, b] = await Promise.all([startFrontend(cluster, prefix), startFrontend(cluster, prefix)]);
  });
  afterAll(async () => {
    for (const kv of clients) kv.close();
    await Promise.all([a?.server.kill(), b?.server.kill()]);
    await cluster?.stop();
  });

  test('a write through one frontend is read through the other, with the same revisions', async () => {
    const revision = await client([a.address]).set('shared/x', { from: 'a' });
    expect(await client([b.address]).get('shared/x')).toEqual({
      key: 'shared/x',
      lease: 0,
      value: { from: 'a' },
      createRevision: revision,
      modRevision: revision,
      version: 1,
    });
  });

  test('a watch through A sees every write made through B in order, exactly once, across a restart of A', async () => {
    const writer = client([b.address]);
    const start = (await writer.set('w/start', 0)) + 1;
    const watcher = client([a.address]);
    const watch = watcher.watch({ prefix: 'w/', startRevision: start, idleTimeoutMs: 3000 });
    const seen: Array<KvWatchEvent> = [];
    const total = 60;
    const reading = (async () => {
      for await (const event of watch) {
        seen.push(event);
        if (seen.length === total) return;
      }
    })();

    const written: Array<[string, number]> = [];
    for (let i = 0; i < total; i++) {
      if (i === total / 2) {
        // Mid-stream: A dies with the watch open, and comes back on the same address.
        await pollUntil('A to have delivered something', () => (seen.length > 0 ? true : undefined));
        await a.server.kill();
        await a.restart();
      }
      written.push([`w/${i % 7}`, await writer.set(`w/${i % 7}`, i)]);
    }
    await reading;
    expect(seen.map((e) => [e.key, e.revision])).toEqual(written);
    expect(seen.map((e) => e.entry?.value)).toEqual(written.map((_, i) => i));
    expect(watch.reconnectCount).toBeGreaterThanOrEqual(1);
    watch.close();
  });

  test('killing a frontend: a client given both carries on; reads never fail, a write that fails is reported, not retried', async () => {
    const kv = client([a.address, b.address], { deadlineMs: 3000 });
    const acked = new Map<string, number>();
    let failedWrites = 0;
    const round = async (i: number): Promise<void> => {
      const key = `kill/${i % 5}`;
      try {
        await kv.set(key, i);
        acked.set(key, i);
      } catch (error) {
        if (!(error instanceof KvError) || error.reason !== 'UNAVAILABLE') throw error;
        failedWrites++;
      }
      await kv.get(key);
    };
    for (let i = 0; i < 20; i++) await round(i);
    await a.server.kill();
    for (let i = 20; i < 60; i++) await round(i);
    // Each failed write met A as it died or before the client knew it was down; afterwards calls go to B.
    expect(failedWrites).toBeLessThanOrEqual(2);
    for (const [key, value] of acked) expect((await client([b.address]).get(key))?.value).toBe(value);
    await a.restart();
  });

  describe('the Go and Python examples given both frontends (Go: its manual resolver and round_robin; Python: a channel per frontend, each call to the next one up)', () => {
    // The interop transcript, with revisions counted from where the cluster is when the example starts.
    const expected = (base: number): string =>
      readFileSync(path.join(REPO_ROOT, 'test/interop/expected-transcript.txt'), 'utf8').replace(
        /(revision|current_revision|create_revision|mod_revision|expected_revision) (\d+)/g,
        (_, word: string, n: string) => `${word} ${base + Number(n)}`,
      );
    const run = promisify(execFile);
    const go = findTool('go');
    const python = path.join(REPO_ROOT, 'clients/python/.venv/bin/python');
    const required = process.env.KV_REQUIRE_ALL_CLIENTS === '1';

    (go !== undefined ? test : test.skip)(
      'the Go example',
      async () => {
        const binary = path.join(makeTempDir('kv-go-example-'), 'kv-example');
        await run(go as string, ['build', '-o', binary, './cmd/kv-example'], { cwd: path.join(REPO_ROOT, 'clients/go'), timeout: 240_000 });
        const base = await client([a.address]).set('example-base', 0);
        const { stdout } = await run(binary, ['-addr', `${a.address},${b.address}`], { timeout: 30_000 });
        expect(stdout).toBe(expected(base));
      },
      300_000,
    );

    (existsSync(python) || required ? test : test.skip)('the Python example', async () => {
      const base = await client([a.address]).set('example-base', 0);
      const { stdout } = await run(python, [path.join(REPO_ROOT, 'clients/python/example.py'), '--addr', `${a.address},${b.address}`], {
        timeout: 30_000,
      });
      expect(stdout).toBe(expected(base));
    });
  });

  test('a lease granted through A is kept alive through B, and its key expires once nobody keeps it alive', async () => {
    const stub = (address: string): KeyValueServiceClient => new KeyValueServiceClient(address, credentials.createInsecure());
    const [viaA, viaB] = [stub(a.address), stub(b.address)];
    const unary = <Req, Res>(call: (req: Req, cb: (e: Error | null, r: Res) => void) => unknown, req: Req): Promise<Res> =>
      new Promise((resolve, reject) => call(req, (e, r) => (e ? reject(e) : resolve(r))));
    try {
      const lease = await unary<GrantLeaseRequest, GrantLeaseResponse>((r, cb) => viaA.grantLease(r, cb), { ttlMs: 2000 });
      const value = { held: true };
      await unary<SetRequest, SetResponse>((r, cb) => viaA.set(r, cb), { key: 'lease/x', value, lease: lease.id, ttlMs: 0 });
      const reader = client([b.address]);
      // Keep it alive through B for twice its ttl.
      const stream = viaB.keepAlive();
      const answers: number[] = [];
      stream.on('data', (res: KeepAliveResponse) => answers.push(res.ttlMs));
      const errors: Error[] = [];
      stream.on('error', (error: Error) => errors.push(error));
      const until = Date.now() + 2 * lease.ttlMs;
      while (Date.now() < until) {
        stream.write({ id: lease.id });
        await new Promise((resolve) => setTimeout(resolve, 400));
        expect((await reader.get('lease/x'))?.value).toEqual(value);
      }
      expect(errors).toEqual([]);
      stream.cancel();
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.every((ttl) => ttl === lease.ttlMs)).toBe(true);
      // Nobody keeps it alive now: etcd expires the lease and deletes the key.
      await pollUntil(
        'the key to expire with its lease',
        async () => ((await reader.get('lease/x')) === undefined ? true : undefined),
        15_000,
      );
    } catch (error) {
      process.stdout.write(`B said:\n${b.server.output()}\n`);
      throw error;
    } finally {
      viaA.close();
      viaB.close();
    }
  });
});
