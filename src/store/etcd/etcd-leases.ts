/**
 * kv leases as etcd leases. Two things differ from etcd's defaults and are
 * handled here: etcd picks 63-bit lease IDs, past what a JavaScript number
 * (and kv's API) holds exactly, so kv asks for an ID of its own below 2^53;
 * and etcd counts time to live in whole seconds, so a ttl in ms is rounded
 * up to the next second (etcd also raises very short ones to its minimum).
 * Leases are etcd's, so they are cluster-wide, not per --etcd-prefix; a
 * lease's keys are reported only under this store's prefix.
 *
 * A private lease (a set's ttlMs) is told apart by its ID alone: kv gives
 * private leases IDs from 2^48 up to 2^49 and shared ones below 2^48 (all
 * below 2^53, exact in every client language), so every frontend on the
 * cluster knows one when it sees it, with nothing more to store or clean up.
 */
import { randomInt } from 'node:crypto';
import { castGrpcError, type Etcd3, type ILeaseKeepAliveResponse } from 'etcd3';
import { BackendUnavailableError, LeaseNotFoundError } from '../errors';
import type { Lease, LeaseInfo } from '../key-value-store';
import { compareKeys } from '../key-order';
import { endStream, readWithRetry, writeOnce, type AttemptOptions } from './etcd-connection';
import type { EtcdKeyspace } from './etcd-keyspace';

const ID_LIMIT = 2 ** 48;
/** Private leases have IDs in [PRIVATE_ID_BASE, 2 * PRIVATE_ID_BASE). */
const PRIVATE_ID_BASE = 2 ** 48;

/** Whether a lease ID is that of a private lease (made by a set with ttlMs for its one key). */
export function isPrivateLease(id: number): boolean {
  return id >= PRIVATE_ID_BASE && id < 2 * PRIVATE_ID_BASE;
}

export class EtcdLeases {
  constructor(
    private readonly client: Etcd3,
    private readonly keyspace: EtcdKeyspace,
    /** Deadline of one etcd call (--etcd-timeout-ms); a keep-alive or an info is retried within it. */
    private readonly callTimeoutMs: number,
  ) {}

  /** A lease of ttlMs (rounded up to whole seconds); with `isPrivate`, a private lease's ID. */
  async grant(ttlMs: number, isPrivate = false): Promise<Lease> {
    const id = (isPrivate ? PRIVATE_ID_BASE : 0) + randomInt(1, ID_LIMIT);
    const res = await writeOnce(() => this.client.leaseClient.leaseGrant({ ID: id, TTL: Math.ceil(ttlMs / 1000) }));
    return { id: Number(res.ID), ttlMs: Number(res.TTL) * 1000, ...(isPrivate ? { private: true } : {}) };
  }

  /**
   * One keep-alive on a stream of its own: etcd answers TTL 0 for a lease it
   * does not have. Sent again while etcd is briefly unavailable (a keep-alive
   * twice is a keep-alive), within the call deadline; then UNAVAILABLE.
   */
  async keepAlive(id: number): Promise<Lease> {
    const answer = await readWithRetry((attempt) => this.keepAliveOnce(id, attempt), this.callTimeoutMs, 'keep-alive');
    if (Number(answer.TTL) <= 0) throw new LeaseNotFoundError(id);
    return { id, ttlMs: Number(answer.TTL) * 1000 };
  }

  /** One keep-alive request and its answer, under the try's deadline; errors as etcd3's classes (readWithRetry maps them). */
  private async keepAliveOnce(id: number, attempt: AttemptOptions): Promise<ILeaseKeepAliveResponse> {
    // etcd3 gives streams no deadline: without one, a member with no leader holds the answer until its own request timeout (7 s).
    const stream = await this.client.leaseClient.leaseKeepAlive(attempt);
    try {
      return await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
        stream.on('data', resolve);
        // The stream's errors are grpc-js's own, not yet etcd3's classes.
        stream.on('error', (error: Error) => reject(castGrpcError(error)));
        stream.on('end', () => reject(new BackendUnavailableError('etcd ended the keep-alive stream without an answer')));
        stream.write({ ID: id });
      });
    } finally {
      endStream(stream);
    }
  }

  /** Revokes the lease; etcd deletes its keys at one revision. Counts the keys under this prefix first. */
  async revoke(id: number): Promise<{ revision: number; deletedCount: number }> {
    const info = await this.info(id, true);
    const res = await writeOnce(() => this.client.leaseClient.leaseRevoke({ ID: id }));
    return { revision: Number(res.header.revision), deletedCount: info.keys?.length ?? 0 };
  }

  async info(id: number, keys: boolean): Promise<LeaseInfo> {
    const res = await readWithRetry((attempt) => this.client.leaseClient.leaseTimeToLive({ ID: id, keys }, attempt), this.callTimeoutMs);
    if (Number(res.TTL) < 0) throw new LeaseNotFoundError(id);
    const own = keys
      ? res.keys
          .filter((k) => k.subarray(0, this.keyspace.prefix.length).equals(this.keyspace.prefix))
          .map((k) => this.keyspace.decodeKey(k))
      : undefined;
    return { id, ttlMs: Number(res.grantedTTL) * 1000, remainingMs: Number(res.TTL) * 1000, keys: own?.sort(compareKeys) };
  }
}
