/**
 * The write path. One loop owns all writing and commits queued ops in
 * batches, each in five steps:
 *
 *   1. decide   (decide.ts, pure) ops -> changes and one outcome per op
 *               (ops past the batch's size bound go back to the queue)
 *   2. append   (log-writer.ts, record-codec.ts) the changes as one batch,
 *               then ONE fdatasync for the whole batch (fsync=always)
 *   3. apply    (store-index.ts) only now may readers see the changes;
 *               the lease clock learns of granted and revoked leases
 *   4. publish  (feed/change-feed.ts) watchers get them, in revision order
 *   5. settle   callers get their outcomes
 *
 * So concurrent writers share an fsync, reads and watchers only ever see
 * durable writes, and a caller is answered only after its write is on disk.
 * While a batch waits on its fsync the next one queues up; once it is
 * durable, applied and published, the next is begun (steps 1 and 2, its
 * fsync started) before this one's callers are answered (step 5), so the
 * disk works while they are (fsync=always; in the other modes there is no
 * fsync to overlap, and the answered callers may join the next batch). One
 * batch at a time waits on the disk.
 */
import type { ChangeFeed } from '../feed/change-feed';
import { NO_STORE_OBSERVER, type StoreObserver } from '../store-observer';
import type { BusyPoll } from './busy-poll';
import type { Compactor } from './compact';
import { type DecideContext, type Decision, type WriteOp, decide, goesAlone } from './decide';
import type { LeaseClock } from './lease-clock';
import type { LogWriter } from './log-writer';
import type { StoreIndex } from './store-index';

/**
 * Keeps one batch's buffer (and so the latency of its callers) bounded:
 * takeBatch counts what the queued requests carry, decide what their
 * changes write (a merge patch or a transaction may write far more).
 */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export class CommitLoop {
  private queue: WriteOp[] = [];
  /** True from the first submit until the loop finds the queue empty (in the same tick, so no write is stranded). */
  private active = false;
  private running: Promise<void> = Promise.resolve();
  /** Told the size of each batch committed (metrics). */
  observer: StoreObserver = NO_STORE_OBSERVER;

  constructor(
    private readonly index: StoreIndex,
    private readonly writer: LogWriter,
    private readonly feed: ChangeFeed,
    private readonly compactor: Compactor,
    private readonly leases: LeaseClock,
    private readonly context: DecideContext,
    /** fsync=always: polls through each batch's fdatasync and for a moment after its callers are answered. */
    private readonly busyPoll?: BusyPoll,
  ) {
    // Writes that arrive while a compaction runs can make the next one due with
    // no further write to notice; the finishing compaction asks for a turn.
    compactor.onFinished = () => this.wake();
  }

  submit(op: WriteOp): void {
    this.compactor.noteWork();
    this.queue.push(op);
    this.wake();
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.active) await this.running;
  }

  /** Runs the loop (if it is not running): it starts a compaction that is due even with no write queued. */
  wake(): void {
    if (!this.active) {
      this.active = true;
      // setImmediate, not a microtask: callers woken by the previous batch get
      // to queue their next writes first, so they share this batch's fsync.
      this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.run());
    }
  }

  private async run(): Promise<void> {
    try {
      let next: Batch | undefined;
      for (;;) {
        if (next === undefined) {
          // start() never throws: a failed start is logged and retried after a backoff.
          if (this.writer.failure === undefined && this.compactor.isDue()) await this.compactor.start();
          if (this.queue.length === 0) break;
          next = this.begin(this.takeBatch());
        }
        const batch = next;
        const decision = await this.complete(batch);
        // Once a batch is durable, the next is decided and its fdatasync started before this one's
        // callers are answered, so the disk works while they are. It is decided against this
        // batch's changes, which are applied by now; only one batch is ever waiting on the disk.
        // A compaction that is due or running goes between batches instead (below).
        next =
          decision !== undefined &&
          'durable' in batch &&
          batch.durable !== undefined &&
          this.queue.length > 0 &&
          !this.compactor.isDue() &&
          !this.compactor.isRunning
            ? this.begin(this.takeBatch())
            : undefined;
        if (decision !== undefined) settle(batch.ops, decision);
        // The answered callers' next requests come in while the loop is still awake.
        if (decision !== undefined && decision.changes.length > 0) this.busyPoll?.hold();
        // Without an fsync to wait for, callers answered in microtasks can refill the queue
        // forever without the event loop turning: a running compaction's file I/O would never
        // complete. So while one runs, each batch lets the event loop turn once.
        // So does a batch that failed: a caller that retries a refused write at once would otherwise be refused
        // again and again in microtasks, and the heal (a timer), like all else, would wait for ever.
        if (this.compactor.isRunning || decision === undefined) await new Promise<void>((resolve) => setImmediate(resolve));
        // Otherwise one turn of the microtask queue: a caller in this process that writes again as
        // soon as it is answered (fsync=never or interval) queues its next write before the loop
        // looks, and it joins the next batch instead of waiting for the loop to be woken.
        else if (next === undefined) await Promise.resolve();
      }
    } finally {
      // Runs in the same tick as the empty-queue check above, so a submit() can
      // never see the loop as active after it has decided to stop.
      this.active = false;
    }
  }

  /**
   * Queued ops up to the first that goes alone (a clear, a lease revocation
   * or expiry, a transaction with a clear: they read whole sets of keys, so
   * they only ever read committed state) and that one alone.
   */
  private takeBatch(): WriteOp[] {
    if (goesAlone(this.queue[0])) return this.queue.splice(0, 1);
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && bytes < MAX_BATCH_BYTES) {
      const op = this.queue[n];
      if (goesAlone(op)) break;
      bytes += op.kind === 'set' ? op.keyBytes + op.valueBytes : op.kind === 'txn' ? 1024 : 64;
      n++;
    }
    return this.queue.splice(0, n);
  }

  /** Steps 1 and 2: decides the batch, appends its changes and starts their fdatasync. */
  private begin(ops: WriteOp[]): Batch {
    if (this.writer.failure !== undefined) return { ops, failure: { error: this.writer.failure } };
    const decision = decide(this.index, ops, this.context, MAX_BATCH_BYTES);
    // Ops left undecided (the batch's changes passed the bound) go back to the front of the queue, in order
    // (concat, not unshift(...rest): the rest may be a hundred thousand small ops, past the limit of a call's arguments).
    if (decision.outcomes.length < ops.length) this.queue = ops.splice(decision.outcomes.length).concat(this.queue);
    if (decision.changes.length === 0) return { ops, decision };
    try {
      this.writer.append(decision.changes);
      this.busyPoll?.hold();
      return { ops, decision, durable: this.writer.commit() };
    } catch (error) {
      return { ops, failure: { error } };
    }
  }

  /**
   * Steps 3 and 4 once the batch is on disk; its decision, or undefined if it
   * failed, its callers told why (nothing of a failed batch is applied,
   * published or acknowledged).
   */
  private async complete(batch: Batch): Promise<Decision | undefined> {
    const { ops } = batch;
    try {
      if ('failure' in batch) throw batch.failure.error;
      if (batch.durable !== undefined) await batch.durable;
    } catch (err) {
      settleAll(ops, err);
      return undefined;
    }
    const { decision } = batch;
    if (decision.changes.length === 0) return decision;
    for (const change of decision.changes) {
      this.index.apply(change);
      if (change.type === 'lease-grant') this.leases.arm(change.id, change.ttlMs);
      else if (change.type === 'lease-revoke') this.leases.forget(change.id);
    }
    this.feed.publish(decision.changes);
    this.observer.committed(ops.length);
    return decision;
  }
}

/**
 * A batch begun: decided, its changes appended, and (fsync=always) their
 * fdatasync under way; or failed before its fdatasync started (the log had
 * failed, or the append threw).
 */
type Batch = { ops: WriteOp[]; decision: Decision; durable?: Promise<void> } | { ops: WriteOp[]; failure: { error: unknown } };

/** Step 5: each caller gets its op's outcome. */
function settle(batch: readonly WriteOp[], { outcomes }: Decision): void {
  for (let i = 0; i < batch.length; i++) {
    const op = batch[i];
    const outcome = outcomes[i];
    if ('error' in outcome) op.reject(outcome.error);
    // decide() gives each op the outcome of its own kind.
    else (op.resolve as (value: unknown) => void)(outcome.value);
  }
}

function settleAll(batch: readonly WriteOp[], error: unknown): void {
  for (const op of batch) op.reject(error);
}
