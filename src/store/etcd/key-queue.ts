/**
 * One at a time per key, within one frontend: work that reads keys and then
 * writes them (an update, a transaction with compares) waits for the work
 * on any of its keys queued before it. Several keys are taken in one fixed
 * order (sorted), so two holders of overlapping keys never wait on each other.
 */
export class KeyQueue {
  /** Per key: settles once the last work queued on it is done. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` once every work queued before it on any of `keys` is done; no keys: at once. */
  async run<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const key of [...new Set(keys)].sort()) {
        const before = this.tails.get(key);
        let release = (): void => undefined;
        const done = new Promise<void>((resolve) => {
          release = resolve;
        });
        const tail = before === undefined ? done : before.then(() => done);
        this.tails.set(key, tail);
        releases.push(() => {
          release();
          if (this.tails.get(key) === tail) this.tails.delete(key);
        });
        if (before !== undefined) await before;
      }
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Keys with work queued or running (for tests). */
  get size(): number {
    return this.tails.size;
  }
}
