/** The shape of one benchmark run, as saved to JSON and rendered into the report. */
import type { Machine, Versions } from './machine';
import type { Summary } from './stats';
import type { Operation, ServerName } from './workloads';

export interface Settings {
  quick: boolean;
  durationSec: number;
  warmupSec: number;
  rounds: number;
  concurrencies: number[];
  keySpace: number;
  valueBytes: number;
  scalingKeyCounts: number[];
  scalingConcurrency: number;
}

export interface Measurement {
  server: ServerName;
  operation: Operation;
  concurrency: number;
  round: number;
  okPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
  /** Server CPU (all threads, user + system) per successful call. */
  serverCpuUsPerCall: number;
}

export interface ScalingMeasurement {
  keys: number;
  operation: Operation;
  round: number;
  okPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface ScalingStartup {
  keys: number;
  preloadMs: number;
  /** kv-server spawn to "listening": dominated by recovering the data directory. */
  startupMs: number;
}

export interface BenchResults {
  startedAt: string;
  elapsedSec: number;
  settings: Settings;
  machine: Machine;
  versions: Versions;
  /** write(100 B) + fdatasync on the data filesystem, in ms. */
  fsync: Summary;
  comparison: Measurement[];
  scaling: ScalingMeasurement[];
  scalingStartup: ScalingStartup[];
}
