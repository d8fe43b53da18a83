/**
 * A backup must start within the call deadline: a server that accepts
 * connections but never answers (here SIGSTOPped) fails it with
 * DEADLINE_EXCEEDED, and with several servers the backup is taken from one
 * that answers. Before, it waited forever (kvctl backup too).
 */
import path from 'node:path';
import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let frozen: RunningServer;
let good: RunningServer;

beforeAll(async () => {
  [frozen, good] = await Promise.all([startServer(), startServer()]);
  const kv = new KvClient(good.address);
  await kv.set('b/1', { n: 1 });
  kv.close();
  frozen.child.kill('SIGSTOP');
});

afterAll(async () => {
  frozen.child.kill('SIGCONT');
  await Promise.all([frozen.stop(), good.stop()]);
});

test('a backup from a server that does not answer fails DEADLINE_EXCEEDED at the deadline, not never', async () => {
  const kv = new KvClient(frozen.address, { deadlineMs: 1000 });
  const file = path.join(makeTempDir('kv-backup-frozen-'), 'kv.backup');
  const started = Date.now();
  const failure = await kv.backup(file).catch((error: unknown) => error);
  expect(failure).toMatchObject({
    reason: 'DEADLINE_EXCEEDED',
    message: expect.stringMatching(/^no answer from .* within 1000 ms: the backup did not start/) as unknown,
  });
  expect(Date.now() - started).toBeLessThan(5000);
  kv.close();
});

test('with several servers, a backup passes over one that does not answer', async () => {
  const kv = new KvClient([frozen.address, good.address], { connectTimeoutMs: 500 });
  const file = path.join(makeTempDir('kv-backup-failover-'), 'kv.backup');
  expect(await kv.backup(file)).toMatchObject({ keyCount: 1 });
  kv.close();
});
