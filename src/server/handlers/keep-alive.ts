import type { KeepAliveRequest, KeepAliveResponse } from '../../gen/kv/v1/kv';
import { LeaseNotFoundError } from '../../store/errors';
import { PermissionDeniedError } from '../access';
import type { CallContext } from '../call-context';
import type { StreamSink } from '../grpc-call';
import { toKeepAliveError } from '../to-status';
import { checkWriteOnLeaseKeys } from './leases';

/**
 * KeepAlive: each request resets one lease to its full time to live and is
 * answered with it, or with ttl_ms 0 once the lease is gone or for an id no
 * lease can have (as etcd: the stream stays open, for the client's other
 * leases; the client learns the lease and its keys are lost).
 * Keeping a lease alive keeps its keys: with --auth-file the caller must be
 * allowed to write every key attached to it, as to revoke it. A lease it may
 * not keep is answered with the refusal in `error`, and the stream stays
 * open for its other leases too.
 */
export async function handleKeepAlive(
  { store, access }: CallContext,
  requests: AsyncIterable<KeepAliveRequest>,
  sink: StreamSink<KeepAliveResponse>,
): Promise<void> {
  for await (const { id } of requests) {
    if (sink.signal.aborted) return;
    // An id no lease can have (0, negative) is answered as a lease that is gone: the stream is shared by every lease of its client.
    if (!Number.isSafeInteger(id) || id < 1) {
      await sink.send({ id, ttlMs: 0, error: undefined });
      continue;
    }
    const refused = access.restricted ? await deniedKeepAlive(store, access, id) : undefined;
    if (refused !== undefined) {
      await sink.send({ id, ttlMs: 0, error: toKeepAliveError(refused) });
      continue;
    }
    const ttlMs = await store.keepAliveLease(id).then(
      (lease) => lease.ttlMs,
      (error: unknown) => {
        if (error instanceof LeaseNotFoundError) return 0;
        throw error;
      },
    );
    await sink.send({ id, ttlMs, error: undefined });
  }
}

/** Why the caller may not keep lease `id` alive, if it may not; any other failure (the store's) ends the stream. */
function deniedKeepAlive(
  store: CallContext['store'],
  access: CallContext['access'],
  id: number,
): Promise<PermissionDeniedError | undefined> {
  return checkWriteOnLeaseKeys(store, access, id).then(
    () => undefined,
    (error: unknown) => {
      if (error instanceof PermissionDeniedError) return error;
      throw error;
    },
  );
}
