/**
 * One at a time per key, within one frontend: work that reads keys and then
 * writes them (an update, a transaction with compares) waits for the work
 * on any of its keys queued before it. Several keys are taken in one fixed
 * order (sorted), so two holders of overlapping keys never wait on each other.
 *
 * Bounded in time and length: work that is still waiting at its deadline
 * leaves the queue without running (`tooLate`), and work that would make a
 * key's queue longer than `maxPerKey` (waiting and running) fails at once
 * without queueing (`tooMany`).
 */
export interface KeyQueueLimits {
  /** Most work queued or running on one key; past it, `run` fails at once. */
  maxPerKey: number;
  /** The error of work that would exceed maxPerKey on `key`. */
  tooMany: (key: string, maxPerKey: number) => Error;
  /** The error of work still waiting on `key` at its deadline (it did not run), after `waitedMs`. */
  tooLate: (key: string, waitedMs: number) => Error;
}

export const DEFAULT_MAX_PER_KEY = 1000;

export class KeyQueue {
  /** Per key: settles once the last work queued on it is done. */
  private readonly tails = new Map<string, Promise<void>>();
  /** Per key: work queued or running on it. */
  private readonly counts = new Map<string, number>();

  constructor(private readonly limits: KeyQueueLimits) {}

  /**
   * Runs `work` once every work queued before it on any of `keys` is done;
   * no keys: at once. Still waiting at `deadline` (ms since the epoch): fails
   * with tooLate, and `work` never runs.
   */
  async run<T>(keys: readonly string[], work: () => Promise<T>, deadline = Infinity): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    for (const key of sorted) {
      if ((this.counts.get(key) ?? 0) >= this.limits.maxPerKey) throw this.limits.tooMany(key, this.limits.maxPerKey);
    }
    const started = Date.now();
    const releases: Array<() => void> = [];
    try {
      for (const key of sorted) {
        const before = this.tails.get(key);
        let release = (): void => undefined;
        const done = new Promise<void>((resolve) => {
          release = resolve;
        });
        // The tail settles only once the work before it and this one are both done, even if this one leaves early.
        const tail = before === undefined ? done : before.then(() => done);
        this.tails.set(key, tail);
        void tail.then(() => {
          if (this.tails.get(key) === tail) this.tails.delete(key);
        });
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
        releases.push(() => {
          release();
          const left = (this.counts.get(key) ?? 1) - 1;
          if (left > 0) this.counts.set(key, left);
          else this.counts.delete(key);
        });
        if (before !== undefined && !(await settlesBy(before, deadline))) throw this.limits.tooLate(key, Date.now() - started);
      }
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Keys with work queued or running (for tests). */
  get size(): number {
    return this.counts.size;
  }
}

/** Whether `promise` settles by `deadline` (ms since the epoch). */
async function settlesBy(promise: Promise<void>, deadline: number): Promise<boolean> {
  if (deadline === Infinity) {
    await promise;
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
