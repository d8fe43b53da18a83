/**
 * The write path. One loop owns all writing: it takes every queued operation,
 * checks them in order (compare-and-set against the committed index plus the
 * changes earlier in the same batch), encodes their records into one buffer
 * behind a BATCH record (so recovery knows where each batch starts and ends),
 * appends it, waits for ONE fdatasync for the whole batch (fsync=always), and
 * only then applies the changes to the index and settles the callers. So
 * concurrent writers share an fsync, and reads only ever see acknowledged
 * writes. While a batch waits on its fsync the next one queues up.
 */
import type { ClearResult, DeleteResult, SetResult } from '../key-value-store';
import { RevisionMismatchError } from '../errors';
import type { Compactor } from './compact';
import type { LogWriter } from './log-writer';
import {
  BATCH_RECORD_SIZE,
  clearRecordSize,
  deleteRecordSize,
  setRecordSize,
  writeClearRecord,
  writeDeleteRecord,
  writeSetRecord,
} from './record-codec';
import type { IndexEntry, StoreIndex } from './store-index';

interface Settle<T> {
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A validated, encoded-ready write waiting for its batch. */
export type WriteOp =
  | ({ kind: 'set'; key: string; keyBytes: number; valueJson: string; valueBytes: number; expected?: number } & Settle<SetResult>)
  | ({ kind: 'delete'; key: string; keyBytes: number; expected?: number } & Settle<DeleteResult>)
  | ({ kind: 'clear'; prefix: string; prefixBytes: number } & Settle<ClearResult>);

/** Keeps one batch's buffer (and so the latency of its callers) bounded. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export class GroupCommit {
  private queue: WriteOp[] = [];
  /** True from the first submit until the loop finds the queue empty (in the same tick, so no write is stranded). */
  private active = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly index: StoreIndex,
    private readonly writer: LogWriter,
    private readonly compactor: Compactor,
  ) {
    // Writes that arrive while a compaction runs can make the next one due with
    // no further write to notice; the finishing compaction asks for a turn.
    compactor.onFinished = () => this.wake();
  }

  submit(op: WriteOp): void {
    this.queue.push(op);
    this.wake();
  }

  private wake(): void {
    if (!this.active) {
      this.active = true;
      // setImmediate, not a microtask: callers woken by the previous batch get
      // to queue their next writes first, so they share this batch's fsync.
      this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.run());
    }
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.active) await this.running;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        // start() never throws: a failed start is logged and retried after a backoff.
        if (this.writer.failure === undefined && this.compactor.isDue()) await this.compactor.start();
        if (this.queue.length === 0) break;
        await this.commitBatch(this.takeBatch());
      }
    } finally {
      // Runs in the same tick as the empty-queue check above, so a submit() can
      // never see the loop as active after it has decided to stop.
      this.active = false;
    }
  }

  /** All queued ops up to the first clear; a clear goes alone, so it only ever checks committed state. */
  private takeBatch(): WriteOp[] {
    if (this.queue[0].kind === 'clear') return this.queue.splice(0, 1);
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && bytes < MAX_BATCH_BYTES) {
      const op = this.queue[n];
      if (op.kind === 'clear') break;
      bytes += op.kind === 'set' ? op.keyBytes + op.valueBytes : op.keyBytes;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async commitBatch(batch: WriteOp[]): Promise<void> {
    if (this.writer.failure !== undefined) {
      for (const op of batch) op.reject(this.writer.failure);
      return;
    }
    const index = this.index;
    const overlay = new Map<string, IndexEntry | null>();
    const current = (key: string): IndexEntry | undefined => {
      const o = overlay.get(key);
      return o === undefined ? index.get(key) : (o ?? undefined);
    };
    let revision = index.revision;
    let bytes = 0;
    /** Per op: the record to write (if any) and how to settle it after commit. */
    const plan: Array<{ entry?: IndexEntry; recordBytes?: number; deleteAt?: number; clearAt?: number; settle: () => void }> = [];

    for (const op of batch) {
      if (op.kind === 'clear') {
        const count = index.countPrefix(op.prefix);
        if (count === 0) {
          const r = revision;
          plan.push({ settle: () => op.resolve({ deletedCount: 0, revision: r }) });
          continue;
        }
        const r = ++revision;
        bytes += clearRecordSize(op.prefixBytes);
        plan.push({ clearAt: r, settle: () => op.resolve({ deletedCount: count, revision: r }) });
        continue;
      }
      const cur = current(op.key);
      const curRevision = cur === undefined ? 0 : cur.modRevision;
      if (op.expected !== undefined && op.expected !== curRevision) {
        if (op.kind === 'delete' && cur === undefined && op.expected === 0) {
          const r = revision;
          plan.push({ settle: () => op.resolve({ deleted: false, revision: r }) });
        } else {
          const err = new RevisionMismatchError(op.key, op.expected, curRevision);
          plan.push({ settle: () => op.reject(err) });
        }
        continue;
      }
      if (op.kind === 'set') {
        const r = ++revision;
        const size = setRecordSize(op.keyBytes, op.valueBytes);
        const entry: IndexEntry = {
          valueJson: op.valueJson,
          createRevision: cur === undefined ? r : cur.createRevision,
          modRevision: r,
          version: cur === undefined ? 1 : cur.version + 1,
        };
        overlay.set(op.key, entry);
        bytes += size;
        plan.push({ entry, recordBytes: size, settle: () => op.resolve({ revision: r }) });
      } else if (cur === undefined) {
        const r = revision;
        plan.push({ settle: () => op.resolve({ deleted: false, revision: r }) });
      } else {
        const r = ++revision;
        overlay.set(op.key, null);
        bytes += deleteRecordSize(op.keyBytes);
        plan.push({ deleteAt: r, settle: () => op.resolve({ deleted: true, revision: r }) });
      }
    }

    if (bytes > 0) {
      const buf = Buffer.allocUnsafe(BATCH_RECORD_SIZE + bytes);
      let at = BATCH_RECORD_SIZE;
      for (let i = 0; i < batch.length; i++) {
        const op = batch[i];
        const p = plan[i];
        if (op.kind === 'set' && p.entry !== undefined) {
          const e = p.entry;
          at = writeSetRecord(buf, at, e.modRevision, e.createRevision, e.version, op.key, op.keyBytes, op.valueJson, op.valueBytes);
        } else if (op.kind === 'delete' && p.deleteAt !== undefined) {
          at = writeDeleteRecord(buf, at, p.deleteAt, op.key, op.keyBytes);
        } else if (op.kind === 'clear' && p.clearAt !== undefined) {
          at = writeClearRecord(buf, at, p.clearAt, op.prefix, op.prefixBytes);
        }
      }
      try {
        this.writer.appendBatch(buf, revision);
        await this.writer.commit();
      } catch (err) {
        for (const op of batch) op.reject(err);
        return;
      }
      // Durable: now readers may see it.
      for (let i = 0; i < batch.length; i++) {
        const op = batch[i];
        const p = plan[i];
        if (op.kind === 'set' && p.entry !== undefined) index.put(op.key, p.entry, p.recordBytes ?? 0);
        else if (op.kind === 'delete' && p.deleteAt !== undefined) index.remove(op.key);
        else if (op.kind === 'clear' && p.clearAt !== undefined) index.removePrefix(op.prefix);
      }
      index.revision = revision;
    }
    for (const p of plan) p.settle();
  }
}
