/** kvctl lease ls: every live lease (ListLeases), every page, as the other list commands print; refused on the etcd engine. */
import { KvClient } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

describe('on the file engine', () => {
  let server: RunningServer;
  let kv: KvClient;
  const granted: number[] = [];
  let privateLease: number;

  beforeAll(async () => {
    server = await startServer();
    kv = new KvClient(server.address);
    // More leases than one page of 1000, so "every page" is tested, and one key's own (private) lease.
    for (let i = 0; i < 1005; i++) granted.push((await kv.grantLease(600_000)).id);
    await kv.set('leased/a', 1, { lease: granted[0] });
    await kv.set('leased/b', 2, { lease: granted[0] });
    await kv.set('own', 3, { ttlMs: 600_000 });
    privateLease = (await kv.get('own'))!.lease;
  }, 60_000);

  afterAll(async () => {
    kv.close();
    await server.stop();
  });

  const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: server.address } });

  test('JSON: one array of every lease in id order, each with its times, key count and whether it is private', async () => {
    const result = await kvctl(['lease', 'ls']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const leases = JSON.parse(result.stdout) as { id: number; ttlMs: number; remainingMs: number; keyCount: number; private: boolean }[];
    expect(leases.map((l) => l.id)).toEqual([...granted, privateLease].sort((a, b) => a - b));
    expect(leases.find((l) => l.id === granted[0])).toEqual({
      id: granted[0],
      ttlMs: 600_000,
      remainingMs: expect.any(Number),
      keyCount: 2,
      private: false,
    });
    expect(leases.find((l) => l.id === privateLease)).toMatchObject({ keyCount: 1, private: true });
    for (const l of leases) expect(l.remainingMs).toBeGreaterThan(0);
  });

  test('--limit N: the first N; -o value: one id a line; -o table: ID TTL REMAINING KEYS PRIVATE', async () => {
    const sorted = [...granted, privateLease].sort((a, b) => a - b);
    const limited = await kvctl(['lease', 'ls', '--limit', '2', '-o', 'value']);
    expect(limited).toEqual({ code: 0, stdout: `${sorted[0]}\n${sorted[1]}\n`, stderr: '' });
    const table = await kvctl(['lease', 'ls', '--limit', '1', '-o', 'table']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^ID +TTL +REMAINING +KEYS +PRIVATE\\n${sorted[0]} +600000ms +\\d+ms +\\d+ +(yes|no)\\n$`));
  });

  test('a --limit that is not a whole number >= 1 is a usage error (exit 2), one line', async () => {
    for (const bad of ['0', 'x', '-1']) {
      const result = await kvctl(['lease', 'ls', '--limit', bad]);
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(/^kvctl: [^\n]*--limit[^\n]*whole number >= 1[^\n]*\n$/);
    }
  });
});

describeWithEtcd()('on the etcd engine', () => {
  let cluster: EtcdCluster;
  let frontend: Frontend;

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    frontend = await startFrontend(cluster, '/kvctl-lease-ls/');
  }, 60_000);

  afterAll(async () => {
    await frontend?.server.stop();
    await cluster?.stop();
  });

  test('lease ls is refused (UNIMPLEMENTED, NOT_SUPPORTED): one line saying so, exit 5, nothing on stdout', async () => {
    const result = await runKvctl(['lease', 'ls'], { env: { KV_ENDPOINTS: frontend.address } });
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 5, stdout: '' });
    expect(result.stderr).toMatch(/^kvctl: lease ls: [^\n]*etcd engine[^\n]*etcdctl lease list[^\n]*\(NOT_SUPPORTED\)\n$/);
  });
});
