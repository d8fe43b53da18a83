/**
 * grpc.health.v1 for the whole server ('') and for kv.v1.KeyValueService:
 * SERVING once the store is open and the server listens, NOT_SERVING while
 * the store refuses writes or the server drains. Health Watch streams are
 * ended on drain, or they would hold shutdown for the whole grace period.
 */
import type { Server, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { SERVICE_NAME } from './key-value-service';

export type ServingState = 'SERVING' | 'NOT_SERVING';

export interface Health {
  set(state: ServingState): void;
  /** Ends every open health Watch stream (on shutdown). */
  endWatches(): void;
}

export function addHealth(server: Server): Health {
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  const watches = new Set<ServerWritableStream<unknown, unknown>>();
  health.addToServer({
    addService: (service, implementation: UntypedServiceImplementation) =>
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
