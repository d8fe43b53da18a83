/** The shape of one benchmark run, as saved to JSON and rendered into the report. */
import type { Machine, Versions } from './machine';
import type { LatencyResult, ThroughputResult } from './measure';
import type { Memory } from './process-usage';
import type { ServerName } from './servers';
import type { Summary } from './stats';

export interface Settings {
  quick: boolean;
  /** Seconds an h2load run aims for (its call count is set from the rate measured just before). */
  durationSec: number;
  /** Seconds of each ghz run. */
  latencySec: number;
  /** Seconds of h2load per server, workload and concurrency before the rounds. */
  warmupSec: number;
  rounds: number;
  concurrencies: number[];
  /** Keys loaded into kv and etcd before the comparison; ghz's requests range over them. */
  keySpace: number;
  valueBytes: number;
  scaleKeyCounts: number[];
  scaleConcurrency: number;
  /** etcd's --quota-backend-bytes in the scale runs (its default, 2 GiB, cannot hold the largest size). */
  etcdQuotaBackendBytes: number;
  /** The parts of the bench this run ran (absent in results saved before there were parts: compare and scale). */
  parts?: Part[];
  watch: {
    watcherCounts: number[];
    idleWatcherCounts: number[];
    /** Writes in flight from the one writer of the fan-out runs. */
    writerConcurrency: number;
    /** h2load's concurrency for the Sets beside idle watchers. */
    idleConcurrency: number;
  };
  txn: {
    concurrency: number;
    /** kv's ttl_ms on TTL-sets; etcd's pre-granted lease lives as long. */
    ttlMs: number;
    /** Keys given their own short time to live for the expiry lateness runs. */
    expiryKeys: number;
    /** kv: their ttl_ms; etcd: its lease TTL, whole seconds. */
    expiryTtlMs: number;
    /** Over how long the expiring keys are written, so their deadlines spread. */
    expirySpreadMs: number;
  };
  tlsConcurrency: number;
  engineConcurrency: number;
  /** Absent from results saved before the workers part existed. */
  workers?: {
    /** kv-server --workers N. */
    count: number;
    concurrency: number;
    /** HTTP/2 connections of the runs over several (the others use one). */
    connections: number;
  };
  store?: {
    /** Checkout of the commit compared against (with node_modules installed). */
    baseDir: string;
    sizes: number[];
    /** base, new, base, new: runs of each. */
    runsEach: number;
  };
}

export const PARTS = ['compare', 'scale', 'watch', 'txn', 'tls', 'engine', 'workers', 'store'] as const;
export type Part = (typeof PARTS)[number];

/** One server, workload and concurrency in one round: h2load's throughput on one key, then ghz's latency over many. */
export interface Measurement {
  server: ServerName;
  workload: string;
  concurrency: number;
  round: number;
  throughput: ThroughputResult;
  latency: LatencyResult;
}

/** A read-only workload's h2load run on servers that have taken no write yet (bench/compare.ts says why). */
export interface ReadBeforeWrites {
  server: ServerName;
  workload: string;
  concurrency: number;
  round: number;
  throughput: ThroughputResult;
}

export interface ScaleMeasurement {
  keys: number;
  server: ServerName;
  workload: string;
  round: number;
  throughput: ThroughputResult;
}

/** A server with `keys` keys loaded, as it started. */
export interface ScaleStart {
  keys: number;
  server: ServerName;
  preloadMs: number;
  /** Bytes the data directory takes on disk after the preload, before the server runs on it. */
  diskBytes: number;
  /** kv: the V8 heap its store took with all the keys loaded, in the preloading process (bench/preload-store.ts). */
  kvHeapUsedBytes?: number;
  /** etcd's bbolt file (member/snap/db) alone: what --quota-backend-bytes limits. */
  etcdDbBytes?: number;
  /** Spawn to ready: mostly recovering the data directory. Absent when the server did not start. */
  startupMs?: number;
  /** Right after start-up, and the peak over its life (read when it is stopped). */
  memoryAfterStart?: Memory;
  peakRssBytes?: number;
  /** Why the server could not be started or measured at this size. */
  error?: string;
}

export interface WatchFanoutRun {
  server: 'kv' | 'etcd';
  watchers: number;
  round: number;
  writes: number;
  failedWrites: number;
  writesPerSec: number;
  events: number;
  /** Events received over the time from the writer's start to the last event. */
  eventsPerSec: number;
  /** Acknowledged writes whose event never arrived. */
  missedEvents: number;
  /** Write sent to event received. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuUsPerWrite: number;
}

export interface WatchIdleRun {
  server: 'kv' | 'etcd';
  idleWatchers: number;
  round: number;
  throughput: ThroughputResult;
}

export interface WatchResults {
  fanout: WatchFanoutRun[];
  idle: WatchIdleRun[];
}

/** One h2load run of a part whose setups are named (TLS, the etcd engine, Txn and TTL). */
export interface SetupRun {
  /** e.g. "kv-tls", "etcd", "kv-etcd-2". */
  setup: string;
  workload: string;
  round: number;
  throughput: ThroughputResult;
}

/** Keys given their own time to live per write, by a Node client with calls in flight (bench/leases.ts). */
export interface LeasePerKeyRun {
  server: 'kv' | 'etcd';
  round: number;
  keysPerSec: number;
  okKeys: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerKey: number;
}

/** When a key's DELETE event arrived, after its deadline (Set acknowledged + time to live). */
export interface ExpiryRun {
  server: 'kv' | 'etcd';
  round: number;
  keys: number;
  /** DELETE events received; the rest never came within the wait. */
  expired: number;
  ttlMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The Sets' own latency: the deadline the server keeps lies between send and acknowledgement. */
  setP50Ms: number;
}

export interface TxnResults {
  runs: SetupRun[];
  leasePerKey: LeasePerKeyRun[];
  expiry: ExpiryRun[];
}

export interface StoreBenchRun {
  /** "base" or "new". */
  side: 'base' | 'new';
  commit: string;
  order: number;
  /** ops/s by "op|concurrency|size". */
  opsPerSec: Record<string, number>;
  /** The lines it printed below the table (open time, churn). */
  notes: string[];
}

export interface BenchResults {
  startedAt: string;
  elapsedSec: number;
  settings: Settings;
  machine: Machine;
  versions: Versions;
  /** write(100 B) + fdatasync on the data filesystem, in ms: at the start of the run, and at the start of each round. */
  fsync: Summary;
  /** Absent from results saved before it was measured. */
  fsyncByRound?: Summary[];
  comparison: Measurement[];
  readsBeforeWrites: ReadBeforeWrites[];
  scale: ScaleMeasurement[];
  scaleStarts: ScaleStart[];
  watch?: WatchResults;
  txn?: TxnResults;
  tls?: SetupRun[];
  engine?: SetupRun[];
  /** kv one process and --workers N, etcd, echo (bench/workers.ts); setups WORKER_SETUPS, workloads "set@1" and the like. */
  workers?: SetupRun[];
  store?: StoreBenchRun[];
  /** Load average (1 min) when each part ended: how much else ran on the machine. */
  loadByPart?: Partial<Record<Part, number>>;
}
