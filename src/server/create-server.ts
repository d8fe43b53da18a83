import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { KeyValueServiceService } from '../gen/kv/v1/kv';
import type { KeyValueStore } from '../store/key-value-store';
import type { Logger } from '../logger';
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
  // A google.protobuf.Value can be several times larger on the wire than as JSON
  // (a number is 9+ bytes, "1," is 2), so leave room before gRPC itself refuses.
  const maxMessageBytes = Math.max(4 * 1024 * 1024, 8 * maxValueBytes + maxKeyBytes + 64 * 1024);
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  });
  server.addService(KeyValueServiceService, createKeyValueService(store, logger));

  addReflection(server);

  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);
  const setHealth = (state: 'SERVING' | 'NOT_SERVING'): void => {
    health.setStatus('', state);
    health.setStatus(SERVICE_NAME, state);
  };

  return {
    listen: (address) =>
      new Promise((resolve, reject) => {
        server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
          if (error) return reject(error);
          // The store is open before the server is built, so binding is the moment we can serve.
          setHealth('SERVING');
          resolve(port);
        });
      }),

    shutdown: (graceMs) =>
      new Promise((resolve) => {
        setHealth('NOT_SERVING');
        // tryShutdown waits for every open call and stream (health watchers
        // included) with no bound of its own; forceShutdown ends what is left.
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
