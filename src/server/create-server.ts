import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ClearRequest, DeleteRequest, GetRequest, KeyValueServiceService, ListKeysRequest } from '../gen/kv/v1/kv';
import type { KeyValueStore } from '../store/key-value-store';
import type { Logger } from '../logger';
import { withStrictDecoding } from './decode-request';
import { decodeSetRequest } from './decode-set-request';
import { encodeGetResponse } from './encode-get-response';
import { createKeyValueService } from './key-value-service';
import { addReflection } from './reflection';

export const SERVICE_NAME = 'kv.v1.KeyValueService';

export interface KvServerOptions {
  store: KeyValueStore;
  logger: Logger;
  /** Largest value the store accepts; the message limit is set well above it so the store can name the limit. */
  maxValueBytes: number;
  maxKeyBytes: number;
}

export interface KvServer {
  /** Binds and starts serving; resolves to the bound port. */
  listen(address: string): Promise<number>;
  /** Stops accepting, lets in-flight calls finish for up to graceMs, then cancels what is left. */
  shutdown(graceMs: number): Promise<void>;
}

export function createServer({ store, logger, maxValueBytes, maxKeyBytes }: KvServerOptions): KvServer {
  // A google.protobuf.Value can be many times larger on the wire than as JSON
  // (a number is 9+ bytes, "0," is 2), and an oversized value should reach
  // the store, which names the limit and the size, rather than be cut off by
  // gRPC with RESOURCE_EXHAUSTED.
  const maxMessageBytes = Math.max(16 * 1024 * 1024, 16 * maxValueBytes + maxKeyBytes + 64 * 1024);
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  });
  const definition = withStrictDecoding(KeyValueServiceService, {
    get: GetRequest,
    set: { decode: decodeSetRequest },
    delete: DeleteRequest,
    listKeys: ListKeysRequest,
    clear: ClearRequest,
  });
  addReflection(server);
  const health = addHealth(server);
  let storeFailed = false;
  const onStoreFailed = (): void => {
    if (storeFailed) return;
    storeFailed = true;
    logger.error({ err: store.failure }, 'the store refuses writes until restarted; health is NOT_SERVING');
    health.set('NOT_SERVING');
  };
  // A store can fail with no call in flight to notice (a lost directory lock): look now and then.
  const watchStore = setInterval(() => {
    if (store.failure !== undefined) onStoreFailed();
  }, 1000).unref();
  server.addService(
    { ...definition, get: { ...definition.get, responseSerialize: encodeGetResponse } },
    createKeyValueService(store, logger, onStoreFailed),
  );

  return {
    listen: (address) =>
      new Promise((resolve, reject) => {
        server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
          if (error) return reject(error);
          // The store is open before the server is built, so binding is the moment we can serve.
          if (store.failure === undefined) health.set('SERVING');
          else onStoreFailed();
          resolve(port);
        });
      }),

    shutdown: (graceMs) =>
      new Promise((resolve) => {
        clearInterval(watchStore);
        health.set('NOT_SERVING');
        // Watchers have been told; their open streams would otherwise hold tryShutdown for the whole grace period.
        health.endWatches();
        // tryShutdown waits for every open call with no bound of its own; forceShutdown ends what is left.
        const force = setTimeout(() => {
          logger.warn({ graceMs }, 'grace period over; cancelling calls still in flight');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** grpc.health.v1 for the whole server ('') and for kv.v1.KeyValueService. */
function addHealth(server: Server): { set(state: 'SERVING' | 'NOT_SERVING'): void; endWatches(): void } {
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  const watches = new Set<ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService: (service, implementation) =>
      server.addService(service, {
        ...implementation,
        watch: (call: ServerWritableStream<unknown, unknown>) => {
          watches.add(call);
          call.once('cancelled', () => watches.delete(call));
          (implementation.watch as (call: ServerWritableStream<unknown, unknown>) => void)(call);
        },
      }),
  });
  return {
    set: (state) => {
      health.setStatus('', state);
      health.setStatus(SERVICE_NAME, state);
    },
    endWatches: () => {
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}
