/**
 * Watch streams on kv and on etcd, read at the byte level (node:http2, one
 * stream per watcher, many streams per connection), their events reduced to
 * what the bench measures: type, key and the value parsed as JSON. kv's
 * Watch is a server stream of kv.v1.WatchResponse; etcd's a bidirectional
 * stream that is sent one create request and stays open.
 */
import { EventType, WatchRequest, WatchResponse } from '../src/gen/kv/v1/kv';
import { type GrpcConnection, GrpcFrameReader, grpcFrame } from './grpc-wire';
import { encodeEtcdRequest, etcdType } from './server-apis';

export type WatchApi = 'kv' | 'etcd';

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The value as JSON (undefined for a delete). */
  value: unknown;
}

export interface WatchHandlers {
  onEvents(events: WatchEvent[]): void;
  /** The stream ended or failed: a watcher should not end while the bench runs. */
  onEnd(reason: string): void;
}

/** etcd's range end for a prefix: the prefix with its last character incremented (ASCII prefixes). */
export function prefixRangeEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

interface EtcdEvent {
  type: number;
  kv: { key: Uint8Array; value: Uint8Array };
}

function kvEvents(message: Buffer): WatchEvent[] {
  return WatchResponse.decode(message).events.map((event) => ({
    type: event.type === EventType.EVENT_TYPE_DELETE ? 'delete' : 'put',
    key: event.entry?.key ?? '',
    value: event.type === EventType.EVENT_TYPE_DELETE ? undefined : (event.entry?.value as unknown),
  }));
}

function etcdEvents(message: Buffer): WatchEvent[] {
  const decoded = etcdType('WatchResponse').decode(message) as unknown as { events: EtcdEvent[]; canceled: boolean; cancel_reason: string };
  if (decoded.canceled) throw new Error(`etcd canceled the watch: ${decoded.cancel_reason}`);
  return decoded.events.map((event) => ({
    // mvccpb.Event: PUT = 0, DELETE = 1.
    type: event.type === 1 ? 'delete' : 'put',
    key: Buffer.from(event.kv.key).toString('utf8'),
    value: event.type === 1 ? undefined : (JSON.parse(Buffer.from(event.kv.value).toString('utf8')) as unknown),
  }));
}

/**
 * Opens one watch on `prefix`, from `startRevision` (0: from now); returns a
 * function that cancels it. A start revision makes the watch see every
 * change since, however late the server registers it.
 */
export function openWatch(
  connection: GrpcConnection,
  api: WatchApi,
  prefix: string,
  handlers: WatchHandlers,
  startRevision = 0,
): () => void {
  const method = api === 'kv' ? 'kv.v1.KeyValueService/Watch' : 'etcdserverpb.Watch/Watch';
  const stream = connection.open(method);
  const reader = new GrpcFrameReader();
  const decode = api === 'kv' ? kvEvents : etcdEvents;
  let ended = false;
  const end = (reason: string): void => {
    if (ended) return;
    ended = true;
    handlers.onEnd(reason);
  };
  stream.on('data', (chunk: Buffer) => {
    try {
      for (const message of reader.push(chunk)) {
        const events = decode(message);
        if (events.length > 0) handlers.onEvents(events);
      }
    } catch (error) {
      end((error as Error).message);
      stream.close();
    }
  });
  stream.on('trailers', (trailers) =>
    end(`ended with grpc-status ${String(trailers['grpc-status'])} ${String(trailers['grpc-message'] ?? '')}`),
  );
  stream.on('error', (error: Error) => end(error.message));
  stream.on('close', () => end('closed'));
  if (api === 'kv') {
    stream.end(grpcFrame(WatchRequest.encode(WatchRequest.fromJSON({ prefix, startRevision })).finish()));
  } else {
    // The request side stays open: etcd ends a watch stream whose client half-closes it.
    stream.write(
      grpcFrame(
        encodeEtcdRequest('etcdserverpb.Watch/Watch', {
          create_request: { key: prefix, range_end: prefixRangeEnd(prefix), start_revision: startRevision },
        }),
      ),
    );
  }
  return () => {
    ended = true;
    stream.close();
  };
}

/** Now, in microseconds of the system's monotonic clock: the same clock in every process on the machine. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
