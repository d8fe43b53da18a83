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
}

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
}
