/**
 * kvctl lease keepalive across a server restart: it keeps the lease, and
 * says on stderr, once per outage, that it lost its server and that it has
 * one again, as watch does (it said nothing).
 */
import { rmSync } from 'node:fs';
import { KvClient } from '@kv/client';
import { startKvctl } from '../support/kvctl-process';
import { startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

test('keeps the lease across a restart and says it lost the stream and resumed, once each', async () => {
  const dataDir = makeTempDir('kvctl-keepalive-outage-');
  let server = await startServer({ dataDir });
  const address = server.address;
  const kv = new KvClient(address);
  const lease = await kv.grantLease(20_000);
  // Some of its time gone, so that kvctl's first refresh shows.
  await pollUntil('the lease to age', async () => ((await kv.leaseInfo(lease.id))?.remainingMs ?? 0) < 18_500 || undefined, 5000);
  const keeper = startKvctl(['lease', 'keepalive', String(lease.id)], { KV_ENDPOINTS: address });
  try {
    // kvctl's refresh has been answered once the time left is back up.
    await pollUntil('a first refresh', async () => ((await kv.leaseInfo(lease.id))?.remainingMs ?? 0) > 19_000 || undefined, 15_000);
    await server.stop();
    await pollUntil('the loss to be said', () => (/lost the keep-alive stream/.test(keeper.stderr()) ? true : undefined), 10_000);
    server = await startServer({ dataDir, args: ['--listen', address] });
    await pollUntil('the resumption to be said', () => (/resumed/.test(keeper.stderr()) ? true : undefined), 10_000);
    expect(keeper.child.exitCode).toBeNull();
    expect(keeper.stderr()).toMatch(
      new RegExp(
        `^kvctl: lost the keep-alive stream \\([^\\n]+\\); still keeping lease ${lease.id}, until its time to live runs out\\n` +
          `kvctl: keep-alive of lease ${lease.id} resumed\\n$`,
      ),
    );
    expect(await kv.leaseInfo(lease.id)).toBeDefined();
  } finally {
    keeper.child.kill('SIGINT');
    await keeper.ended;
    kv.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
