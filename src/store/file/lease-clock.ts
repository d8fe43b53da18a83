import { MAX_TIMER_MS } from '../../max-timer';

/**
 * The most leases one expiry revokes. Each chunk is a batch of its own, the
 * next submitted only once the last is committed: 20,000 leases running out
 * at once were one batch that held every call for most of a second, and
 * chunks queued all at once would hold every write as long.
 */
export const EXPIRY_CHUNK = 128;

/**
 * When leases run out. Deadlines are runtime state, not logged: a grant or
 * a restart gives a lease its full time to live (as etcd does on recovery,
 * so downtime never shortens a lease), and each keep-alive resets it. A
 * min-heap of deadlines and one timer, armed for the earliest, find what
 * expired; the file engine then revokes those leases through the commit
 * loop, so an expiry is logged, applied and published like any change.
 * Lateness is the timer's (about a millisecond on an idle event loop) plus
 * one commit (the fsync of the batch that deletes the keys).
 */
export class LeaseClock {
  private readonly deadlines = new Map<number, number>();
  /** [deadline, id] pairs, earliest first; an entry is stale once its lease's deadline moved or went. */
  private readonly heap: Array<[number, number]> = [];
  private readonly expiring = new Set<number>();
  /** Called back once a lease on its way out is settled: forgotten (its expiry committed), armed again, or its expiry failed. */
  private readonly settling = new Map<number, Array<() => void>>();
  private timer: NodeJS.Timeout | undefined;
  /** A full chunk went out: the next comes once it is committed (and the event loop has turned), not by the timer. */
  private chunkInFlight = false;
  private immediate: NodeJS.Immediate | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    /** Called with leases whose deadline passed; each is reported once. Settles once their expiry is committed (or failed). */
    private readonly onExpire: (ids: number[]) => Promise<unknown> | void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts (or restarts) a lease's full time to live. */
  arm(id: number, ttlMs: number): void {
    this.expiring.delete(id);
    this.settled(id);
    const deadline = this.now() + ttlMs;
    this.deadlines.set(id, deadline);
    this.push([deadline, id]);
    this.schedule();
  }

  /**
   * A keep-alive: false if the lease is unknown or already on its way out,
   * its deadline passed included (the timer, a moment late, has not fired
   * yet: it is made to now, so the lease is expiring as the caller looks).
   */
  refresh(id: number, ttlMs: number): boolean {
    const deadline = this.deadlines.get(id);
    if (deadline === undefined || this.expiring.has(id)) return false;
    if (deadline <= this.now()) {
      if (this.closed) return false;
      // This one first: the clock revokes a chunk at a time, and the caller must find it expiring (whenSettled), not unknown.
      this.expiring.add(id);
      void this.onExpire([id]);
      if (!this.chunkInFlight) {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.fire();
      }
      return false;
    }
    this.arm(id, ttlMs);
    return true;
  }

  /** The lease was revoked (or its expiry committed). */
  forget(id: number): void {
    this.deadlines.delete(id);
    this.expiring.delete(id);
    this.settled(id);
  }

  /** Whether the lease's deadline passed and its expiry is not committed yet. */
  isExpiring(id: number): boolean {
    return this.expiring.has(id);
  }

  /**
   * Resolves once a lease on its way out is settled: its expiry committed
   * (forget), it was armed again (a heal gives leases their time back), or
   * its expiry failed (expiryFailed). At once for any other lease.
   */
  whenSettled(id: number): Promise<void> {
    if (!this.expiring.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.settling.get(id);
      if (waiting === undefined) this.settling.set(id, [resolve]);
      else waiting.push(resolve);
    });
  }

  /** The commit of these leases' expiry failed: whoever waits on them looks again. */
  expiryFailed(ids: readonly number[]): void {
    for (const id of ids) this.settled(id);
  }

  private settled(id: number): void {
    const waiting = this.settling.get(id);
    if (waiting === undefined) return;
    this.settling.delete(id);
    for (const resolve of waiting) resolve();
  }

  /** Milliseconds left, 0 once expired; undefined if unknown. */
  remaining(id: number): number | undefined {
    const deadline = this.deadlines.get(id);
    if (deadline === undefined) return undefined;
    return this.expiring.has(id) ? 0 : Math.max(0, Math.ceil(deadline - this.now()));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    for (const id of [...this.settling.keys()]) this.settled(id);
  }

  private schedule(): void {
    if (this.closed || this.chunkInFlight) return;
    while (this.heap.length > 0 && this.isStale(this.heap[0])) this.pop();
    if (this.heap.length === 0) return;
    const earliest = this.heap[0][0];
    if (this.timer !== undefined && earliest >= this.armedFor) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = earliest;
    // Node fires a longer timeout at once (after 1 ms, with a warning): a lease of over 24.8 days would wake the loop every millisecond.
    // Capped, the timer fires early, finds nothing expired and arms itself again.
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, earliest - this.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.now();
    const expired: number[] = [];
    while (this.heap.length > 0 && this.heap[0][0] <= now && expired.length < EXPIRY_CHUNK) {
      const top = this.pop();
      if (this.isStale(top)) continue;
      this.expiring.add(top[1]);
      expired.push(top[1]);
    }
    const committed = expired.length > 0 ? this.onExpire(expired) : undefined;
    if (expired.length === EXPIRY_CHUNK) {
      // Perhaps more expired: the next chunk once this one is committed, so that writes which came meanwhile are queued
      // before it (queued all at once, the chunks held every write until the last was committed), and after the event
      // loop turns (a timer of 0 would wait a millisecond).
      this.chunkInFlight = true;
      const next = (): void => {
        if (this.closed) return;
        this.immediate = setImmediate(() => {
          this.immediate = undefined;
          this.chunkInFlight = false;
          if (this.timer !== undefined) clearTimeout(this.timer);
          if (!this.closed) this.fire();
        });
      };
      void Promise.resolve(committed).then(next, next);
      return;
    }
    this.schedule();
  }

  private isStale([deadline, id]: [number, number]): boolean {
    return this.deadlines.get(id) !== deadline || this.expiring.has(id);
  }

  private push(item: [number, number]): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent][0] <= heap[i][0]) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  private pop(): [number, number] {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop() as [number, number];
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l][0] < heap[m][0]) m = l;
        if (r < heap.length && heap[r][0] < heap[m][0]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  }
}
