/**
 * Step 1 of a commit, decide: pure. Ops in (in the order they were
 * submitted), changes and one outcome per op out. Compare-and-set checks and
 * revision arithmetic live here and nowhere else: each op sees the committed
 * state plus the changes decided before it in the same batch, and each op
 * that changes anything takes the next revision.
 */
import type { Change, StoredEntry } from '../change';
import { RevisionMismatchError } from '../errors';
import type { ClearResult, DeleteResult, SetResult } from '../key-value-store';

interface Settle<T> {
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A validated write waiting for its batch. */
export type WriteOp =
  | ({ kind: 'set'; key: string; keyBytes: number; valueJson: string; valueBytes: number; expected?: number } & Settle<SetResult>)
  | ({ kind: 'delete'; key: string; keyBytes: number; expected?: number } & Settle<DeleteResult>)
  | ({ kind: 'clear'; prefix: string; prefixBytes: number } & Settle<ClearResult>);

/** What an op answers: the value its promise resolves with, or the error it rejects with. */
export type Outcome = { value: SetResult | DeleteResult | ClearResult } | { error: Error };

/** The committed state decide reads. */
export interface DecideState {
  readonly revision: number;
  get(key: string): StoredEntry | undefined;
  /** Every key under the prefix ('' = all), in code point order, with its entry. */
  entriesUnder(prefix: string): Array<[string, StoredEntry]>;
}

export interface Decision {
  /** In revision order; empty if nothing changes. */
  changes: Change[];
  /** outcomes[i] answers ops[i]. */
  outcomes: Outcome[];
  /** The store revision after the batch. */
  revision: number;
}

/**
 * Decides a batch. A clear reads the committed state only, so it must come
 * alone (takeBatch in commit-loop.ts sees to that).
 */
export function decide(state: DecideState, ops: readonly WriteOp[]): Decision {
  const overlay = new Map<string, StoredEntry | null>();
  const current = (key: string): StoredEntry | undefined => {
    const o = overlay.get(key);
    return o === undefined ? state.get(key) : (o ?? undefined);
  };
  const changes: Change[] = [];
  const outcomes: Outcome[] = [];
  let revision = state.revision;

  for (const op of ops) {
    if (op.kind === 'clear') {
      const removed = state.entriesUnder(op.prefix);
      // Removing nothing is no change: the revision stays.
      if (removed.length > 0) changes.push({ type: 'clear', prefix: op.prefix, revision: ++revision, removed });
      outcomes.push({ value: { deletedCount: removed.length, revision } });
      continue;
    }
    const prev = current(op.key);
    const modRevision = prev === undefined ? 0 : prev.modRevision;
    if (op.expected !== undefined && op.expected !== modRevision) {
      // Deleting a missing key "only if missing" is a no-op, not a conflict.
      if (op.kind === 'delete' && prev === undefined && op.expected === 0) outcomes.push({ value: { deleted: false, revision } });
      else outcomes.push({ error: new RevisionMismatchError(op.key, op.expected, modRevision) });
      continue;
    }
    if (op.kind === 'set') {
      const r = ++revision;
      const entry: StoredEntry = {
        valueJson: op.valueJson,
        createRevision: prev === undefined ? r : prev.createRevision,
        modRevision: r,
        version: prev === undefined ? 1 : prev.version + 1,
      };
      overlay.set(op.key, entry);
      changes.push({ type: 'set', key: op.key, revision: r, entry, prev });
      outcomes.push({ value: { revision: r } });
    } else if (prev === undefined) {
      outcomes.push({ value: { deleted: false, revision } });
    } else {
      const r = ++revision;
      overlay.set(op.key, null);
      changes.push({ type: 'delete', key: op.key, revision: r, prev });
      outcomes.push({ value: { deleted: true, revision: r } });
    }
  }
  return { changes, outcomes, revision };
}
