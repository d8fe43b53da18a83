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

/**
 * `processName`: under --workers N, which process of the server this is
 * ("owner", "worker-1"...); its process metrics carry it as the `process`
 * label, so the supervisor's sum keeps each process's own series.
 */
export function createServerMetrics(version: string, engine: string, processName?: string): ServerMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry, processName);
  registerBuildInfo(registry, version, engine);
  return { registry, calls: createCallMetrics(registry), store: createStoreMetrics(registry) };
}

export function collectProcessMetrics(registry: Registry, processName: string | undefined): void {
  collectDefaultMetrics({ register: registry, labels: processName === undefined ? undefined : { process: processName } });
}

export function registerBuildInfo(registry: Registry, version: string, engine: string): void {
  new Gauge({
    name: 'kv_build_info',
    help: 'Always 1; the labels say which kv-server and engine this is',
    labelNames: ['version', 'engine'],
    // Every process of a --workers server says the same: one of them, not their count.
    aggregator: 'first',
    registers: [registry],
  }).set({ version, engine }, 1);
}
