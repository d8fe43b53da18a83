import { Compare, KvError, Op, type KvClient } from '@kv/client';

/** What the work under a lock is given. */
export interface HeldLock {
  /** Aborted if the lease is lost (check `aborted` too: it may be lost already): someone else may hold the lock now, so stop. */
  signal: AbortSignal;
  /** The lease the lock key is on: guard a write with `Compare.lease(name, '==', lease)` to make it only while the lock is held. */
  lease: number;
}

/**
 * Runs `work` while holding the lock `name`: one holder at a time, across
 * processes and machines. The lock is a key created only if absent, on the
 * holder's lease. Released, the lease is revoked and the key goes with it;
 * if the holder dies, nobody refreshes its lease, and the key goes when the
 * time to live runs out. Waiters watch the key and try again once it is
 * deleted.
 */
export async function withLock<T>(kv: KvClient, name: string, work: (lock: HeldLock) => Promise<T>, ttlMs = 10_000): Promise<T> {
  const lease = await kv.grantLease(ttlMs);
  const keepAlive = kv.keepAlive(lease);
  const lost = new AbortController();
  void keepAlive.lost.then((why) => lost.abort(why));
  try {
    for (;;) {
      // Create-only: the key is written only if it does not exist (mod_revision 0).
      const attempt = await kv
        .txn()
        .if(Compare.modRevision(name, '==', 0))
        .then(Op.set(name, { pid: process.pid }, { lease: lease.id }))
        .commit();
      if (attempt.succeeded) break;
      // Held by someone else: wait for the key to be deleted. Watching from
      // the revision the attempt read at, so a release in between is not missed.
      for await (const event of kv.watch({ key: name, startRevision: attempt.revision + 1 })) {
        if (event.type === 'delete') break;
      }
    }
    return await work({ signal: lost.signal, lease: lease.id });
  } finally {
    keepAlive.close();
    // Releases the lock: the key goes with the lease, and the waiters' watches see it go.
    await kv.revokeLease(lease.id).catch((error: unknown) => {
      if (!(error instanceof KvError && error.reason === 'LEASE_NOT_FOUND')) throw error;
    });
  }
}
