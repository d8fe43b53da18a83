/** keepAlive handles against a real server: each handle independent, the lease kept while any is open. */
import net from 'node:net';
import { KvClient, type KeepAliveHandle, type KeepAliveResumeChange, type KvError } from '@kv/client';
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
  let restarting = await startServer({ dataDir });
  const address = restarting.address;
  const client = new KvClient(address);
  try {
    const ttlMs = 9000;
    const lease = await client.grantLease(ttlMs);
    // Refreshed now; the next turn is 3 s away, and the server is down before it.
    const handle = client.keepAlive(lease);
    const lost = lostSoFar(handle);
    await restarting.kill();
    restarting = await startServer({ dataDir, args: ['--listen', address] });
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

test('onResume is told once when the keep-alive stream breaks and once when a restarted server answers; a handle without it, nothing', async () => {
  const dataDir = makeTempDir();
  let restarting = await startServer({ dataDir });
  const address = restarting.address;
  const client = new KvClient(address);
  try {
    const lease = await client.grantLease(9000);
    const told: KeepAliveResumeChange[] = [];
    const handle = client.keepAlive(lease, { onResume: (change) => told.push(change) });
    const quiet = client.keepAlive(lease);
    // Answered once: only an outage of a stream that worked is told.
    await pollUntil('a first answer', async () => ((await client.leaseInfo(lease.id))?.remainingMs ?? 0) > 0 || undefined, 2000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(told).toEqual([]);
    await restarting.kill();
    await pollUntil('the loss to be told', () => (told.length > 0 ? true : undefined), 5000);
    // Down a while: the stream is reopened and fails again, and it is told once.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(told).toEqual([{ state: 'lost', reason: expect.any(String) as string }]);
    restarting = await startServer({ dataDir, args: ['--listen', address] });
    await pollUntil('the resumption to be told', () => (told.length > 1 ? true : undefined), 5000);
    expect(told[1]).toEqual({ state: 'resumed' });
    handle.close();
    quiet.close();
    expect(told).toHaveLength(2);
  } finally {
    client.close();
    await restarting.stop();
  }
});

test('keepAlive refuses an onResume that is not a function, before anything is sent', () => {
  expect(() => fixture.kv.keepAlive(1, { onResume: 'yes' } as never)).toThrow(/onResume must be a function/);
});

/**
 * A TCP proxy to `target` that passes the server's bytes on `answerDelayMs`
 * late (in order), and can be made a black hole: its connections stay open,
 * but nothing goes through either way any more.
 */
async function startBlackHoleProxy(
  target: string,
  answerDelayMs: number,
): Promise<{ address: string; blackHole(): void; close(): Promise<void> }> {
  const port = Number(target.slice(target.lastIndexOf(':') + 1));
  let holed = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    socket.on('data', (bytes) => holed || upstream.write(bytes));
    // Timers of one delay fire in the order they were set.
    upstream.on('data', (bytes) => setTimeout(() => holed || socket.write(bytes), answerDelayMs));
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.on('end', () => upstream.end());
    upstream.on('end', () => setTimeout(() => socket.end(), answerDelayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    blackHole: () => (holed = true),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The time to live of the leases kept through a black-hole proxy. */
const BLACK_HOLE_TTL_MS = 3000;

type CutAt = 'between two refreshes' | 'before the first refresh is answered' | 'after a handle closed, kept again from a copy';

/**
 * A client reaches the server through a proxy that delivers each answer
 * 300 ms late, grants a 3 s lease, sets a key on it and keeps it alive;
 * the proxy becomes a black hole at `cutAt`. Returns how much later than
 * a watch (straight to the server) saw the key deleted `handle.lost`
 * resolved (negative: sooner).
 */
async function lostLaterThanDeletionMs(cutAt: CutAt): Promise<number> {
  const ttlMs = BLACK_HOLE_TTL_MS;
  // Each answer arrives well after the server restarted the lease's time to live: counting from its arrival is late.
  const proxy = await startBlackHoleProxy(fixture.server.address, 300);
  const client = new KvClient(proxy.address, { deadlineMs: 5000 });
  const watches: { close(): void }[] = [];
  try {
    const lease = await client.grantLease(ttlMs);
    const key = `black-hole/${lease.id}`;
    const revision = await client.set(key, 'held', { lease: lease.id });
    // The server's side, seen directly rather than through the proxy.
    const watch = fixture.kv.watch({ key, startRevision: revision + 1 });
    watches.push(watch);
    let deletedAt: number | undefined;
    void (async () => {
      for await (const event of watch) {
        if (event.type === 'delete') {
          deletedAt = performance.now();
          return;
        }
      }
    })();
    let handle: KeepAliveHandle;
    if (cutAt === 'between two refreshes') {
      handle = client.keepAlive(lease);
      await wait(1.5 * ttlMs);
      proxy.blackHole();
    } else if (cutAt === 'before the first refresh is answered') {
      // Kept a while after the grant: the time to live runs from the grant, not from keepAlive.
      await wait(ttlMs / 3);
      proxy.blackHole();
      handle = client.keepAlive(lease);
    } else {
      // Refreshed (last at about 2/3 of the time to live), then not for a while: a copy knows no grant time, the client knows that refresh.
      const first = client.keepAlive(lease);
      await wait(0.8 * ttlMs);
      first.close();
      await wait(0.4 * ttlMs);
      proxy.blackHole();
      handle = client.keepAlive({ ...lease });
    }
    expect(deletedAt).toBeUndefined();
    let lostAt: number | undefined;
    void handle.lost.then(() => (lostAt = performance.now()));
    await pollUntil(
      'the lease lost and its key deleted',
      () => (lostAt !== undefined && deletedAt !== undefined ? true : undefined),
      3 * ttlMs,
    );
    await expect(handle.lost).resolves.toMatchObject({ reason: 'UNAVAILABLE' });
    return (lostAt as number) - (deletedAt as number);
  } finally {
    for (const watch of watches) watch.close();
    client.close();
    await proxy.close();
  }
}

test.each(['between two refreshes', 'before the first refresh is answered', 'after a handle closed, kept again from a copy'] as const)(
  'a lease whose refreshes stop being answered (cut %s) is reported lost no later than the server deletes its key',
  async (cutAt) => {
    // The client gives up 1% of the time to live early; 5% more is for this process's and the watch's scheduling on a
    // loaded machine. Counted from an answer's arrival or from keepAlive, lost comes about a second or more too late.
    expect(await lostLaterThanDeletionMs(cutAt)).toBeLessThanOrEqual(0.05 * BLACK_HOLE_TTL_MS);
  },
  30_000,
);

test('a lease kept again after its handle closed counts from its last answered refresh, not the grant: refreshed, not lost at once', async () => {
  const ttlMs = 3000;
  const grantedAt = Date.now();
  const lease = await fixture.kv.grantLease(ttlMs);
  const first = fixture.kv.keepAlive(lease);
  // Refreshed at about 0, 1 and 2 s: the server holds the lease until about 5 s.
  await wait(0.8 * ttlMs);
  first.close();
  await wait(grantedAt + 1.2 * ttlMs - Date.now());
  expect(await fixture.kv.leaseInfo(lease.id)).toBeDefined();
  const again = fixture.kv.keepAlive(lease);
  try {
    const lost = lostSoFar(again);
    await wait(0);
    expect(lost()).toBeUndefined();
    // Past the server's expiry had no refresh been sent.
    await staysAlive(lease.id, again, ttlMs);
  } finally {
    again.close();
    await fixture.kv.revokeLease(lease.id);
  }
}, 20_000);

test('a lease whose time to live ran out by its grant, but that another client kept alive, is refreshed rather than reported lost at once', async () => {
  const ttlMs = 1000;
  const lease = await fixture.kv.grantLease(ttlMs);
  const other = new KvClient(fixture.server.address, { deadlineMs: 5000 });
  const otherHandle = other.keepAlive(lease.id);
  try {
    await wait(1.5 * ttlMs);
    expect(await fixture.kv.leaseInfo(lease.id)).toBeDefined();
    const handle = fixture.kv.keepAlive(lease);
    otherHandle.close();
    try {
      await staysAlive(lease.id, handle, 3 * ttlMs);
    } finally {
      handle.close();
    }
  } finally {
    other.close();
    await fixture.kv.revokeLease(lease.id);
  }
}, 20_000);

test('a lease longer than setTimeout takes (2^31 - 1 ms) is refreshed a third of its time to live apart, not every millisecond', async () => {
  const ttlMs = 100 * 24 * 3600 * 1000;
  const lease = await fixture.kv.grantLease(ttlMs);
  const handle = fixture.kv.keepAlive(lease);
  try {
    // Refreshed every millisecond, a lease always has its whole time to live left.
    await pollUntil(
      'the lease to count down between refreshes',
      async () => ((await fixture.kv.leaseInfo(lease.id))!.remainingMs <= ttlMs - 500 ? true : undefined),
      5000,
    );
  } finally {
    handle.close();
    await fixture.kv.revokeLease(lease.id);
  }
});
