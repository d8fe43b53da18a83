import type { WatchRequest } from '../../gen/kv/v1/kv';
import type { WatchBatch } from '../../store/key-value-store';
import type { CallContext } from '../call-context';
import type { StreamSink } from '../grpc-call';

/**
 * Watch: streams the store's watch batches until the client goes away, the
 * server shuts down, or the watch ends with an error (compacted, too slow).
 * A batch is taken only once the previous one was handed to the transport,
 * so a client that reads slowly slows only its own watch.
 */
export async function handleWatch(
  { store, access }: CallContext,
  { key, prefix, startRevision, prevEntry }: WatchRequest,
  sink: StreamSink<WatchBatch>,
): Promise<void> {
  if (key !== undefined) access.key('read', key);
  else if (prefix !== undefined) access.prefix('read', prefix);
  const watch = store.watch({ key, prefix, startRevision, prevEntry });
  const stop = (): void => watch.close();
  sink.signal.addEventListener('abort', stop);
  try {
    while (!sink.signal.aborted) await sink.send(await watch.next());
  } finally {
    sink.signal.removeEventListener('abort', stop);
    watch.close();
  }
}
