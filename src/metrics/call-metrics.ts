/**
 * Per-call metrics of the gRPC service: calls answered by method and status
 * code, latency of unary calls, calls in flight and streams open. Children
 * for each method (and each code, on first use) are kept in arrays, so the
 * hot path never builds a label string. Under --workers N each worker counts
 * its own calls and the supervisor sums them, the gauges included (calls in
 * flight and streams open on the whole server: 'sum', prom-client's default).
 */
import { status } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CallObserver, MethodObserver } from '../server/call-observer';

/** Seconds: 0.5 ms (a read from memory) to 10 s (a deadline). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createCallMetrics(registry: Registry): CallObserver {
  const handled = new Counter({
    name: 'kv_grpc_server_handled_total',
    help: 'kv.v1 calls answered, by method and gRPC status code (a streaming call counts when it ends; CANCELLED: the client went away)',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'kv_grpc_server_handling_seconds',
    help: 'Time from a unary kv.v1 call arriving to its answer, by method',
    labelNames: ['method'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'kv_grpc_server_in_flight_calls',
    help: 'Unary kv.v1 calls being handled now, by method',
    labelNames: ['method'],
    registers: [registry],
  });
  const streams = new Gauge({
    name: 'kv_grpc_server_open_streams',
    help: 'Streaming kv.v1 calls open now (Watch, KeepAlive, Backup), by method',
    labelNames: ['method'],
    registers: [registry],
  });
  return {
    method: (method: string): MethodObserver => {
      const byCode: Counter.Internal[] = [];
      const answered = (code: status): Counter.Internal =>
        (byCode[code] ??= handled.labels({ method, code: status[code] ?? String(code) }));
      const latencyOf = latency.labels({ method });
      const inFlightOf = inFlight.labels({ method });
      const streamsOf = streams.labels({ method });
      // Zeros from the start, so rate() and absent() work before the first call.
      answered(status.OK).inc(0);
      inFlightOf.set(0);
      return {
        started: () => {
          inFlightOf.inc();
          return performance.now();
        },
        answered: (startedAt, code) => {
          inFlightOf.dec();
          answered(code).inc();
          latencyOf.observe((performance.now() - startedAt) / 1000);
        },
        streamOpened: () => streamsOf.inc(),
        streamClosed: (code) => {
          streamsOf.dec();
          answered(code).inc();
        },
      };
    },
  };
}
