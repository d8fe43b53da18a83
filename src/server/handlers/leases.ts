/** The lease RPCs: GrantLease, RevokeLease, LeaseInfo, ListLeases (KeepAlive is a stream: keep-alive.ts). */
import type {
  GrantLeaseRequest,
  GrantLeaseResponse,
  LeaseInfoRequest,
  LeaseInfoResponse,
  ListLeasesRequest,
  ListLeasesResponse,
  RevokeLeaseRequest,
  RevokeLeaseResponse,
} from '../../gen/kv/v1/kv';
import { LeaseNotFoundError } from '../../store/errors';
import type { CallContext } from '../call-context';
import { decodeLeasePageToken, encodeLeasePageToken } from '../page-token';
import { InvalidArgumentError } from '../service-errors';

const DEFAULT_LEASE_PAGE = 100;
const MAX_LEASE_PAGE = 1000;

/**
 * ListLeases: one page of the live leases, in id order. A lease's keys may
 * lie under any prefix, so it needs admin on every key, as Backup does.
 */
export async function handleListLeases(
  { store, access }: CallContext,
  { pageSize, pageToken }: ListLeasesRequest,
): Promise<ListLeasesResponse> {
  access.prefix('admin', '');
  if (pageSize < 0) throw new InvalidArgumentError(`page_size must not be negative (got ${pageSize})`);
  const limit = pageSize === 0 ? DEFAULT_LEASE_PAGE : Math.min(pageSize, MAX_LEASE_PAGE);
  const after = pageToken === '' ? 0 : decodeLeasePageToken(pageToken);
  const { leases, more } = await store.listLeases({ after, limit });
  return {
    leases: leases.map((lease) => ({
      id: lease.id,
      grantedTtlMs: lease.ttlMs,
      remainingTtlMs: lease.remainingMs,
      keyCount: lease.keyCount,
      private: lease.private === true,
    })),
    nextPageToken: more && leases.length > 0 ? encodeLeasePageToken(leases[leases.length - 1].id) : '',
  };
}

/**
 * GrantLease: a new lease. It touches no key until one is attached, which
 * needs write; so with --auth-file it needs write on some prefix, and a
 * read-only caller cannot fill the store with leases it could never use.
 */
export async function handleGrantLease({ store, access }: CallContext, { ttlMs }: GrantLeaseRequest): Promise<GrantLeaseResponse> {
  access.somePrefix('write');
  return store.grantLease(ttlMs);
}

/**
 * RevokeLease: deletes the lease and its keys, which the caller must be
 * allowed to write (a denial names the lease, not a key the caller may not see).
 */
export async function handleRevokeLease({ store, access }: CallContext, { id }: RevokeLeaseRequest): Promise<RevokeLeaseResponse> {
  if (access.restricted) access.leaseKeys('write', id, (await store.leaseInfo(id, { keys: true })).keys ?? []);
  return store.revokeLease(id);
}

/** LeaseInfo: time to live and, if asked (and every one is readable by the caller), the keys. */
export async function handleLeaseInfo({ store, access }: CallContext, request: LeaseInfoRequest): Promise<LeaseInfoResponse> {
  const info = await store.leaseInfo(request.id, { keys: request.keys });
  access.leaseKeys('read', request.id, info.keys ?? []);
  return { id: info.id, grantedTtlMs: info.ttlMs, remainingTtlMs: info.remainingMs, keys: info.keys ?? [] };
}

/**
 * Throws PermissionDeniedError unless the caller may write every key attached
 * to lease `id` (a lease that is gone has none): to keep it alive, and to
 * attach another key to it. Attaching needs it too, as in etcd
 * (checkLeasePuts): otherwise a writer of one prefix could attach a key to
 * another role's lease, after which that role could neither keep it alive
 * nor revoke it.
 */
export async function checkWriteOnLeaseKeys(store: CallContext['store'], access: CallContext['access'], id: number): Promise<void> {
  const keys = await store.leaseInfo(id, { keys: true }).then(
    (info) => info.keys ?? [],
    (error: unknown) => {
      if (error instanceof LeaseNotFoundError) return [];
      throw error;
    },
  );
  access.leaseKeys('write', id, keys);
}
