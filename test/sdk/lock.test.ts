/**
 * The distributed lock of the SDK README (clients/typescript/examples/with-lock.ts)
 * against a real server: contending clients take turns, a holder killed
 * with SIGKILL loses the lock when its lease runs out, and a holder whose
 * lease is revoked is told through its signal. The README shows the file
 * itself, word for word.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Compare, KvClient, KvError, Op } from '@kv/client';
import { withLock } from '../../clients/typescript/examples/with-lock';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

let server: RunningServer;
const clients: KvClient[] = [];
const client = (): KvClient => {
  const kv = new KvClient(server.address);
  clients.push(kv);
  return kv;
};

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  for (const kv of clients) kv.close();
  expect(await server.stop()).toBe(0);
});

test('the SDK README shows clients/typescript/examples/with-lock.ts as it is', () => {
  const readme = readFileSync(path.join(REPO_ROOT, 'clients/typescript/README.md'), 'utf8');
  const example = readFileSync(path.join(REPO_ROOT, 'clients/typescript/examples/with-lock.ts'), 'utf8');
  expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
});

test('clients contending for a lock hold it one at a time, and every read-modify-write under it lands', async () => {
  const kvs = Array.from({ length: 4 }, client);
  await kvs[0].set('counter', 0);
  let inside = 0;
  let mostInside = 0;
  const rounds = 3;
  const increment = (kv: KvClient): Promise<void> =>
    withLock(kv, 'locks/counter', async ({ lease }) => {
      mostInside = Math.max(mostInside, ++inside);
      const count = (await kv.get<number>('counter'))?.value ?? Number.NaN;
      // A read-modify-write slow enough that, without the lock, the rounds running at once would lose updates.
      await new Promise((r) => setTimeout(r, 50));
      // Written only while the lock key is still on this holder's lease (fencing).
      const { succeeded } = await kv
        .txn()
        .if(Compare.lease('locks/counter', '==', lease))
        .then(Op.set('counter', count + 1))
        .commit();
      expect(succeeded).toBe(true);
      inside--;
    });
  await Promise.all(
    kvs.map(async (kv) => {
      for (let i = 0; i < rounds; i++) await increment(kv);
    }),
  );
  expect(mostInside).toBe(1);
  expect((await kvs[0].get('counter'))?.value).toBe(kvs.length * rounds);
  // Released: the lock key went with the last holder's lease.
  expect(await kvs[0].get('locks/counter')).toBeUndefined();
}, 30_000);

test('a holder killed with SIGKILL keeps the lock until its lease runs out; then a waiter gets it', async () => {
  const ttlMs = 1000;
  const holder = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'lock-holder.ts'), server.address, 'locks/job', String(ttlMs)],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    let said = '';
    holder.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    await pollUntil('the holder to take the lock', () => (said.includes('holding') ? true : undefined), 30_000);
    const kv = client();
    let acquiredAt: number | undefined;
    const waiter = withLock(kv, 'locks/job', async () => {
      acquiredAt = Date.now();
      return (await kv.get<{ pid: number }>('locks/job'))?.value.pid;
    });
    // Alive, the holder keeps its lease refreshed well past one time to live.
    await new Promise((r) => setTimeout(r, 2 * ttlMs));
    expect((await kv.get<{ pid: number }>('locks/job'))?.value.pid).toBe(holder.pid);
    expect(acquiredAt).toBeUndefined();

    holder.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await waiter).toBe(process.pid);
    expect(acquiredAt).toBeGreaterThanOrEqual(killedAt);
  } finally {
    holder.kill('SIGKILL');
  }
}, 60_000);

test("a holder whose lease is revoked is told through the work's signal", async () => {
  const [kv, other] = [client(), client()];
  const reason = await withLock(
    kv,
    'locks/revoked',
    async ({ signal, lease }) => {
      const aborted = new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)));
      expect(await other.revokeLease(lease)).toBe(1);
      return aborted;
      // A short time to live, so the keep-alive that learns of the revocation comes soon.
    },
    1500,
  );
  expect(reason).toBeInstanceOf(KvError);
  expect(reason).toMatchObject({ reason: 'LEASE_NOT_FOUND' });
  expect(await kv.get('locks/revoked')).toBeUndefined();
});
