/**
 * The store's metrics: fsync latency, commit batch sizes and compactions
 * as the engine reports them (StoreObserver), and gauges read from
 * store.stats() at each scrape (keys, bytes, revision, leases, watchers).
 * Gauges an engine cannot tell (the etcd engine's key count) are left out.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { KeyValueStore } from '../store/key-value-store';
import type { StoreObserver } from '../store/store-observer';

/** Seconds: 100 µs (a fast SSD) to 1 s (a disk in trouble). */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Writes per batch: how many callers shared one append and one fsync. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
const COMPACTION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface StoreMetrics {
  /** For the engine to call (FileStoreOptions.observer). */
  observer: StoreObserver;
  /** Starts reporting the gauges of an open store. */
  watch(store: KeyValueStore): void;
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
  compactions.labels({ result: 'ok' }).inc(0);
  compactions.labels({ result: 'failed' }).inc(0);

  const observer: StoreObserver = {
    synced: (seconds) => fsync.observe(seconds),
    committed: (ops) => batch.observe(ops),
    compacted: ({ ok, seconds, reclaimedBytes }) => {
      compactions.labels({ result: ok ? 'ok' : 'failed' }).inc();
      if (ok) {
        compactionSeconds.observe(seconds);
        reclaimed.inc(reclaimedBytes);
      }
    },
  };

  return {
    observer,
    watch: (store) => {
      const gauge = (name: string, help: string, read: () => number | undefined): void => {
        if (read() === undefined) return;
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read() ?? 0);
          },
        });
      };
      gauge('kv_store_revision', 'The store revision: the number of changes since the store was created', () => store.stats().revision);
      gauge('kv_store_keys', 'Live keys', () => store.stats().keys);
      gauge('kv_store_leases', 'Live leases', () => store.stats().leases);
      gauge('kv_store_watchers', 'Watches open on the store (Watch streams)', () => store.stats().watchers);
      gauge(
        'kv_store_log_live_bytes',
        'Bytes of the records of the live keys: what a compaction would keep',
        () => store.stats().liveBytes,
      );
      gauge(
        'kv_store_log_bytes',
        'Bytes of every data file (logs and snapshots); less live bytes is what compaction reclaims',
        () => store.stats().diskBytes,
      );
      gauge('kv_store_writable', '1 while the store takes writes, 0 while it refuses them (disk errors; see the logs)', () =>
        store.failure === undefined ? 1 : 0,
      );
    },
  };
}
