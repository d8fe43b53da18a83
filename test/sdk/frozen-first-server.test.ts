/**
 * Several servers, the first one frozen (SIGSTOP: it accepts connections
 * but never answers): a watch and a keep-alive move on to the next server
 * after connectTimeoutMs, as calls do. Before, both waited out their whole
 * deadline on the frozen one and failed while the other was healthy (and
 * a keep-alive that failed so let its lease, and any lock on it, expire).
 */
import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

let frozen: RunningServer;
let good: RunningServer;
let direct: KvClient;

beforeAll(async () => {
  [frozen, good] = await Promise.all([startServer(), startServer()]);
  direct = new KvClient(good.address);
  await direct.set('w/k', 1);
  frozen.child.kill('SIGSTOP');
});

afterAll(async () => {
  direct.close();
  frozen.child.kill('SIGCONT');
  await Promise.all([frozen.stop(), good.stop()]);
});

test('a watch through [frozen, good] is served by the good one well before its start timeout', async () => {
  const kv = new KvClient([frozen.address, good.address], { connectTimeoutMs: 500 });
  const started = Date.now();
  for await (const event of kv.watch({ key: 'w/k', startRevision: 1, startTimeoutMs: 8000 })) {
    expect(event).toMatchObject({ key: 'w/k', revision: 1 });
    break;
  }
  expect(Date.now() - started).toBeLessThan(4000);
  kv.close();
});

test('a keep-alive through [frozen, good] keeps a lease past its time to live', async () => {
  const lease = await direct.grantLease(1500);
  const kv = new KvClient([frozen.address, good.address], { connectTimeoutMs: 500, deadlineMs: 8000 });
  const handle = kv.keepAlive(lease.id);
  let lost: unknown;
  void handle.lost.then((error) => (lost = error));
  const started = Date.now();
  // Three times its time to live: without refreshes it would be gone.
  await pollUntil('4.5 s of keep-alive', () => (Date.now() - started > 4500 || lost !== undefined ? true : undefined), 10_000);
  expect(lost).toBeUndefined();
  expect(await direct.leaseInfo(lease.id)).toMatchObject({ id: lease.id });
  handle.close();
  kv.close();
});
