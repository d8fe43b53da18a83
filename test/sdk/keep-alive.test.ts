/** keepAlive handles against a real server: each handle independent, the lease kept while any is open. */
import { KvClient, type KeepAliveHandle, type KvError } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { deadlineMs: 5000 });
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

const TTL_MS = 1000;

/** Whether `handle.lost` has resolved, looked at without waiting. */
function lostSoFar(handle: KeepAliveHandle): () => KvError | undefined {
  let lost: KvError | undefined;
  void handle.lost.then((error) => (lost = error));
  return () => lost;
}

/** Watches the lease for `ms` (several times its time to live): it must exist throughout, and `handle` must not report it lost. */
async function staysAlive(id: number, handle: KeepAliveHandle, ms: number): Promise<void> {
  const lost = lostSoFar(handle);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    expect(await kv.leaseInfo(id)).toBeDefined();
    expect(lost()).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.each(['first', 'second'])(
  'two handles on one lease: closing the %s keeps the lease alive under the other; closing both lets it expire',
  async (which) => {
    const lease = await kv.grantLease(TTL_MS);
    const first = kv.keepAlive(lease);
    const second = kv.keepAlive(lease);
    const [closed, open] = which === 'first' ? [first, second] : [second, first];
    closed.close();
    await staysAlive(lease.id, open, 3 * TTL_MS);
    open.close();
    await pollUntil(
      'the lease to expire once no handle keeps it',
      async () => ((await kv.leaseInfo(lease.id)) === undefined ? true : undefined),
      5 * TTL_MS,
    );
  },
);

test('a revoked lease is reported lost to every handle on it', async () => {
  const lease = await kv.grantLease(TTL_MS);
  const handles = [kv.keepAlive(lease), kv.keepAlive(lease.id)];
  await kv.revokeLease(lease.id);
  for (const handle of handles) await expect(handle.lost).resolves.toMatchObject({ reason: 'LEASE_NOT_FOUND' });
}, 10_000);
