/**
 * The store's metrics: fsync latency, commit batch sizes and compactions
 * as the engine reports them (StoreObserver), and gauges read from
 * store.stats() at each scrape (keys, bytes, revision, leases, watchers).
 * Gauges an engine cannot tell (the etcd engine's key count) are left out.
 *
 * Under --workers N the supervisor sums every process's registry (prom-client's
 * AggregatorRegistry.aggregate): the histograms and counters only the owner
 * feeds (the workers' stay at zero), each gauge by the aggregator it names.
 */
import { type Aggregator, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { KeyValueStore } from '../store/key-value-store';
import type { StoreObserver } from '../store/store-observer';

/** Seconds: 100 µs (a fast SSD) to 1 s (a disk in trouble). */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Writes per batch: how many callers shared one append and one fsync. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
const COMPACTION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * Which gauges a process reports: 'all' in one process (and on each worker
 * of the etcd engine, each its own frontend of the one store); under
 * --workers N with the file engine the owner reports the store's and each
 * worker only its own watchers (the owner's watches are its workers' feeds).
 */
export type StoreGauges = 'all' | 'store' | 'watchers';

export interface StoreMetrics {
  /** For the engine to call (FileStoreOptions.observer). */
  observer: StoreObserver;
  /** Starts reporting the gauges of an open store. */
  watch(store: KeyValueStore, gauges?: StoreGauges): void;
}

export function createStoreMetrics(registry: Registry): StoreMetrics {
  const registers = [registry];
  const fsync = new Histogram({
    name: 'kv_store_fsync_duration_seconds',
    help: 'Time of each fdatasync of the log (file engine)',
    buckets: FSYNC_BUCKETS,
    registers,
  });
  const batch = new Histogram({
    name: 'kv_store_commit_batch_writes',
    help: 'Writes committed together in one batch: one append, and with --fsync always one fdatasync (file engine)',
    buckets: BATCH_BUCKETS,
    registers,
  });
  const compactions = new Counter({
    name: 'kv_store_compactions_total',
    help: 'Compactions ended, by result (ok, failed) (file engine)',
    labelNames: ['result'],
    registers,
  });
  const compactionSeconds = new Histogram({
    name: 'kv_store_compaction_duration_seconds',
    help: 'Time of each compaction that completed (file engine)',
    buckets: COMPACTION_BUCKETS,
    registers,
  });
  const reclaimed = new Counter({
    name: 'kv_store_compaction_reclaimed_bytes_total',
    help: 'Bytes of data files that compactions removed, less the snapshots they wrote (file engine)',
    registers,
  });
  const paused = new Counter({
    name: 'kv_store_compaction_paused_seconds_total',
    help: 'Time compactions paused writing their checkpoint so that writes and reads could run (file engine)',
    registers,
  });
  compactions.labels({ result: 'ok' }).inc(0);
  compactions.labels({ result: 'failed' }).inc(0);

  const observer: StoreObserver = {
    synced: (seconds) => fsync.observe(seconds),
    committed: (ops) => batch.observe(ops),
    compacted: ({ ok, seconds, reclaimedBytes, pausedSeconds }) => {
      compactions.labels({ result: ok ? 'ok' : 'failed' }).inc();
      paused.inc(pausedSeconds);
      if (ok) {
        compactionSeconds.observe(seconds);
        reclaimed.inc(reclaimedBytes);
      }
    },
  };

  return {
    observer,
    watch: (store, gauges = 'all') => {
      /**
       * `aggregator`: how the supervisor of --workers N combines the processes that report the gauge. 'max' for
       * a state of the one store (one reporter with the file engine: the owner; with etcd, each worker's view
       * of the same store, the newest the largest); 'sum' for what each process holds of its own.
       */
      const gauge = (name: string, help: string, aggregator: Aggregator, read: () => number | undefined): void => {
        if (read() === undefined) return;
        new Gauge({
          name,
          help,
          aggregator,
          registers,
          collect() {
            this.set(read() ?? 0);
          },
        });
      };
      // The store's state, and the watches this process holds: see StoreGauges.
      const ofStore = gauges !== 'watchers';
      const stats = (): ReturnType<KeyValueStore['stats']> => store.stats();
      if (ofStore) {
        gauge('kv_store_revision', 'The store revision: the number of changes since the store was created', 'max', () => stats().revision);
        gauge('kv_store_keys', 'Live keys', 'max', () => stats().keys);
        gauge('kv_store_leases', 'Live leases', 'max', () => stats().leases);
      }
      if (gauges !== 'store') gauge('kv_store_watchers', 'Watches open on the store (Watch streams)', 'sum', () => stats().watchers);
      if (ofStore) {
        gauge(
          'kv_store_log_live_bytes',
          'Bytes of the records of the live keys: what a compaction would keep',
          'max',
          () => stats().liveBytes,
        );
        gauge(
          'kv_store_log_bytes',
          'Bytes of every data file (logs and snapshots); less live bytes is what compaction reclaims',
          'max',
          () => stats().diskBytes,
        );
        // 'min': the server takes writes only if every process that reports it does.
        gauge('kv_store_writable', '1 while the store takes writes, 0 while it refuses them (disk errors; see the logs)', 'min', () =>
          store.failure === undefined ? 1 : 0,
        );
      }
    },
  };
}
