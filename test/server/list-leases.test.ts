/**
 * ListLeases through the real server: every live lease once, in id order,
 * page by page, with its times, its key count and whether it is a key's
 * private (ttl_ms) lease; bad pages are INVALID_ARGUMENT; the same through
 * --workers 2 (the call is forwarded to the store owner).
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KvClient } from '@kv/client';
import { KeyValueServiceClient, type LeaseStatus, type ListLeasesResponse } from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';

function listLeases(client: KeyValueServiceClient, pageSize: number, pageToken: string): Promise<ListLeasesResponse> {
  return new Promise((resolve, reject) =>
    client.listLeases({ pageSize, pageToken }, new Metadata(), (error, response) => (error ? reject(error) : resolve(response))),
  );
}

async function allLeases(client: KeyValueServiceClient, pageSize: number): Promise<{ leases: LeaseStatus[]; pages: number }> {
  const leases: LeaseStatus[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await listLeases(client, pageSize, token);
    leases.push(...page.leases);
    token = page.nextPageToken;
    pages++;
  } while (token !== '');
  return { leases, pages };
}

describe.each([
  ['one process', [] as string[]],
  ['--workers 2', ['--workers', '2']],
])('ListLeases, %s', (_name, args) => {
  let server: RunningServer;
  let kv: KvClient;
  let raw: KeyValueServiceClient;
  beforeAll(async () => {
    server = await startServer({ args });
    kv = new KvClient(server.address);
    raw = new KeyValueServiceClient(server.address, credentials.createInsecure());
  });
  afterAll(async () => {
    kv.close();
    raw.close();
    expect(await server.stop()).toBe(0);
  });

  test('every live lease once, in id order, page by page, with its times, key count and privacy', async () => {
    const shared = [await kv.grantLease(60_000), await kv.grantLease(120_000), await kv.grantLease(180_000)];
    await kv.set('held/a', 1, { lease: shared[0].id });
    await kv.set('held/b', 2, { lease: shared[0].id });
    for (let i = 0; i < 4; i++) await kv.set(`session/${i}`, i, { ttlMs: 30_000 });
    // Set again with a ttl: the key's first private lease is revoked, one remains per key.
    await kv.set('session/0', 'again', { ttlMs: 30_000 });
    const privateIds = await Promise.all([0, 1, 2, 3].map(async (i) => (await kv.get(`session/${i}`))!.lease));
    await kv.revokeLease(shared[2].id);

    const { leases, pages } = await allLeases(raw, 2);
    expect(pages).toBe(3);
    expect(leases.map((l) => l.id)).toEqual([shared[0].id, shared[1].id, ...privateIds].sort((a, b) => a - b));
    const byId = new Map(leases.map((l) => [l.id, l]));
    expect(byId.get(shared[0].id)).toMatchObject({ grantedTtlMs: 60_000, keyCount: 2, private: false });
    expect(byId.get(shared[1].id)).toMatchObject({ grantedTtlMs: 120_000, keyCount: 0, private: false });
    for (const id of privateIds) expect(byId.get(id)).toMatchObject({ grantedTtlMs: 30_000, keyCount: 1, private: true });
    for (const lease of leases) expect(lease.remainingTtlMs).toBeGreaterThan(0);
    for (const lease of leases) expect(lease.remainingTtlMs).toBeLessThanOrEqual(lease.grantedTtlMs);

    // One page of all of them (0: the default size).
    expect((await listLeases(raw, 0, '')).leases.map((l) => l.id)).toEqual(leases.map((l) => l.id));
    // The SDK, page by page.
    const seen = [];
    for await (const lease of kv.leases({ pageSize: 2 })) seen.push(lease);
    expect(seen.map((l) => [l.id, l.ttlMs, l.keyCount, l.private])).toEqual(
      leases.map((l) => [l.id, l.grantedTtlMs, l.keyCount, l.private]),
    );
  });

  test('a negative page size and a malformed page token are INVALID_ARGUMENT', async () => {
    for (const [size, token] of [
      [-1, ''],
      [0, 'not a token'],
      [0, Buffer.from('{"v":1,"l":-3}').toString('base64url')],
    ] as const) {
      const error = await listLeases(raw, size, token).catch((e: unknown) => e as ServiceError);
      expect(error).toMatchObject({ code: status.INVALID_ARGUMENT });
    }
  });
});
