/**
 * grpc.health.v1 for the whole server ('') and for kv.v1.KeyValueService:
 * SERVING once the store is open and the server listens, NOT_SERVING while
 * the store refuses writes or the server drains. Health Watch streams are
 * ended on drain, or they would hold shutdown for the whole grace period.
 *
 * Served on the generated stubs (src/gen/health), as grpc-health-check
 * serves it (Check, Watch, List; an unknown service is NOT_FOUND for Check
 * and SERVICE_UNKNOWN for Watch), without that package: it parses
 * health.proto with protobufjs as it loads, about 60 ms of every start-up.
 */
import { type Server, type ServerWritableStream, status } from '@grpc/grpc-js';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatusCode,
  type HealthServer,
  HealthService,
} from '../gen/health/v1/health';
import { SERVICE_NAME } from './key-value-service';
import type { OpenStreamQuota } from './open-stream-quota';

/** The longest service name a health Watch may name: a stream holds its request while open. */
export const MAX_SERVICE_NAME_BYTES = 1024;

export type ServingState = 'SERVING' | 'NOT_SERVING';

export interface Health {
  set(state: ServingState): void;
  /** Ends every open health Watch stream (on shutdown). */
  endWatches(): void;
}

type WatchCall = ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;

export function addHealth(server: Server, quota: OpenStreamQuota): Health {
  let state: ServingStatusCode = ServingStatusCode.NOT_SERVING;
  const statusOf = (service: string): ServingStatusCode | undefined => (service === '' || service === SERVICE_NAME ? state : undefined);
  const watches = new Set<WatchCall>();
  const implementation: HealthServer = {
    check: (call, callback) => {
      const serving = statusOf(call.request.service);
      if (serving === undefined) callback({ code: status.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
      else callback(null, { status: serving });
    },
    watch: (call) => {
      const service = call.request.service;
      if (Buffer.byteLength(service, 'utf8') > MAX_SERVICE_NAME_BYTES) {
        call.emit('error', {
          code: status.INVALID_ARGUMENT,
          details: `a service name is at most ${MAX_SERVICE_NAME_BYTES} bytes; this server's are "" and "${SERVICE_NAME}"`,
        });
        return;
      }
      const place = quota.take(call.getPeer(), 'health Watch');
      if (typeof place !== 'function') {
        call.emit('error', place);
        return;
      }
      // A service this server does not have stays SERVICE_UNKNOWN, and its stream open, as the protocol asks.
      call.write({ status: statusOf(service) ?? ServingStatusCode.SERVICE_UNKNOWN });
      watches.add(call);
      const ended = (): void => {
        watches.delete(call);
        place();
      };
      call.once('cancelled', ended);
      call.once('finish', ended);
    },
    list: (_call, callback) => {
      callback(null, { statuses: { '': { status: state }, [SERVICE_NAME]: { status: state } } });
    },
  };
  server.addService(HealthService, implementation);
  return {
    set: (next) => {
      state = next === 'SERVING' ? ServingStatusCode.SERVING : ServingStatusCode.NOT_SERVING;
      for (const call of watches) {
        const serving = statusOf(call.request.service);
        if (serving !== undefined) call.write({ status: serving });
      }
    },
    endWatches: () => {
      for (const call of watches) call.end();
      watches.clear();
    },
  };
}
