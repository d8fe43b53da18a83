import type { KeepAliveRequest, KeepAliveResponse } from '../../gen/kv/v1/kv';
import { LeaseNotFoundError } from '../../store/errors';
import type { CallContext } from '../call-context';
import type { StreamSink } from '../grpc-call';

/**
 * KeepAlive: each request resets one lease to its full time to live and is
 * answered with it, or with ttl_ms 0 once the lease is gone (as etcd: the
 * stream stays open; the client learns the lease and its keys are lost).
 */
export async function handleKeepAlive(
  { store }: CallContext,
  requests: AsyncIterable<KeepAliveRequest>,
  sink: StreamSink<KeepAliveResponse>,
): Promise<void> {
  for await (const { id } of requests) {
    if (sink.signal.aborted) return;
    const ttlMs = await store.keepAliveLease(id).then(
      (lease) => lease.ttlMs,
      (error: unknown) => {
        if (error instanceof LeaseNotFoundError) return 0;
        throw error;
      },
    );
    await sink.send({ id, ttlMs });
  }
}
