/**
 * Everything --metrics-listen serves, on one prom-client registry: the
 * process's own metrics (CPU, memory, event loop lag, GC: prom-client's
 * defaults, unprefixed as Prometheus dashboards expect), kv_build_info, the
 * calls (call-metrics.ts) and the store (store-metrics.ts).
 * docs/operations.md lists every metric and what to alert on.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallObserver } from '../server/call-observer';
import { createCallMetrics } from './call-metrics';
import { createStoreMetrics, type StoreMetrics } from './store-metrics';

export interface ServerMetrics {
  registry: Registry;
  calls: CallObserver;
  store: StoreMetrics;
}

export function createServerMetrics(version: string, engine: string): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'kv_build_info',
    help: 'Always 1; the labels say which kv-server and engine this is',
    labelNames: ['version', 'engine'],
    registers: [registry],
  }).set({ version, engine }, 1);
  return { registry, calls: createCallMetrics(registry), store: createStoreMetrics(registry) };
}
