/** The lease RPCs: GrantLease, RevokeLease, LeaseInfo (KeepAlive is a stream: keep-alive.ts). */
import type {
  GrantLeaseRequest,
  GrantLeaseResponse,
  LeaseInfoRequest,
  LeaseInfoResponse,
  RevokeLeaseRequest,
  RevokeLeaseResponse,
} from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';

/** GrantLease: a new lease; needs no key permission (a lease touches no key until one is attached). */
export async function handleGrantLease({ store }: CallContext, { ttlMs }: GrantLeaseRequest): Promise<GrantLeaseResponse> {
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
