import type { WatchRequest } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import type { StreamSink } from '../grpc-call';
import { splitWatchBatch, type WatchMessage } from '../wire/encode-watch-response';

/**
 * Watch: streams the store's watch batches until the client goes away, the
 * server shuts down, or the watch ends with an error (compacted, too slow).
 * A batch is taken only once the previous one was handed to the transport,
 * so a client that reads slowly slows only its own watch. With `fragment`,
 * a batch goes out as messages of about 1 MiB each (a revision larger than
 * that split across several).
 */
export async function handleWatch(
  { store, access }: CallContext,
  { key, prefix, startRevision, prevEntry, fragment }: WatchRequest,
  sink: StreamSink<WatchMessage>,
): Promise<void> {
  if (key !== undefined) access.key('read', key);
  else if (prefix !== undefined) access.prefix('read', prefix);
  const watch = store.watch({ key, prefix, startRevision, prevEntry });
  const stop = (): void => watch.close();
  sink.signal.addEventListener('abort', stop);
  // The stream's first message says how often an idle watcher hears from the server, so a client knows when silence means a broken
  // stream, and which history the revisions are of, so a client that resumes knows whether they still name the changes it followed.
  let first = true;
  try {
    while (!sink.signal.aborted) {
      const batch = await watch.next();
      const messages: WatchMessage[] = fragment ? splitWatchBatch(batch) : [batch];
      if (first) {
        messages[0] = { ...messages[0], progressIntervalMs: store.watchProgressMs, historyId: store.historyId };
        first = false;
      }
      for (const message of messages) if (!sink.signal.aborted) await sink.send(message);
    }
  } finally {
    sink.signal.removeEventListener('abort', stop);
    watch.close();
  }
}
