/**
 * What an engine reports as it works, for monitoring: the server's metrics
 * implement it (src/metrics), the store only calls it. Every call is on a
 * path that already did I/O, and must stay cheap.
 */
export interface StoreObserver {
  /** An fdatasync of the log ended after `seconds` (whether or not it failed). */
  synced(seconds: number): void;
  /** One batch of `ops` writes was committed with one append (and, with fsync always, one fdatasync). */
  committed(ops: number): void;
  /**
   * A compaction ended: `reclaimedBytes` is how much smaller the data files are for it; `pausedSeconds`, how long
   * of `seconds` its checkpoint writer paused so that writes and reads could run (compact.ts, "Sharing the event loop").
   */
  compacted(outcome: { ok: boolean; seconds: number; reclaimedBytes: number; pausedSeconds: number }): void;
}

export const NO_STORE_OBSERVER: StoreObserver = {
  synced: () => undefined,
  committed: () => undefined,
  compacted: () => undefined,
};
