/** keepAlive handles against a real server: each handle independent, the lease kept while any is open. */
import { KvClient, type KeepAliveHandle, type KvError } from '@kv/client';
import { startServer } from '../support/server-process';
import { serverWithClient } from '../support/sdk-fixture';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const fixture = serverWithClient();

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
    expect(await fixture.kv.leaseInfo(id)).toBeDefined();
    expect(lost()).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test.each(['first', 'second'])(
  'two handles on one lease: closing the %s keeps the lease alive under the other; closing both lets it expire',
  async (which) => {
    const lease = await fixture.kv.grantLease(TTL_MS);
    const first = fixture.kv.keepAlive(lease);
    const second = fixture.kv.keepAlive(lease);
    const [closed, open] = which === 'first' ? [first, second] : [second, first];
    closed.close();
    await staysAlive(lease.id, open, 3 * TTL_MS);
    open.close();
    await pollUntil(
      'the lease to expire once no handle keeps it',
      async () => ((await fixture.kv.leaseInfo(lease.id)) === undefined ? true : undefined),
      5 * TTL_MS,
    );
  },
);

test('a revoked lease is reported lost to every handle on it', async () => {
  const lease = await fixture.kv.grantLease(TTL_MS);
  const handles = [fixture.kv.keepAlive(lease), fixture.kv.keepAlive(lease.id)];
  await fixture.kv.revokeLease(lease.id);
  for (const handle of handles) await expect(handle.lost).resolves.toMatchObject({ reason: 'LEASE_NOT_FOUND' });
}, 10_000);

test('a keep-alive refreshes its lease as soon as a restarted server is back, not at its next turn a third of the time to live later', async () => {
  const dataDir = makeTempDir();
  let restarting = await startServer({ dataDir, entry: 'dist' });
  const address = restarting.address;
  const client = new KvClient(address);
  try {
    const ttlMs = 9000;
    const lease = await client.grantLease(ttlMs);
    // Refreshed now; the next turn is 3 s away, and the server is down before it.
    const handle = client.keepAlive(lease);
    const lost = lostSoFar(handle);
    await restarting.kill();
    restarting = await startServer({ dataDir, entry: 'dist', args: ['--listen', address] });
    const backAt = Date.now();
    // More time left than a refresh from before the restart could give: one came after it.
    await pollUntil(
      'a refresh after the restart',
      async () => {
        const info = await client.leaseInfo(lease.id);
        return info !== undefined && info.remainingMs > ttlMs - (Date.now() - backAt) ? true : undefined;
      },
      1000,
    );
    expect(lost()).toBeUndefined();
    handle.close();
  } finally {
    client.close();
    await restarting.stop();
  }
});
