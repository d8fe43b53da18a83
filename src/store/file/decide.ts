/**
 * Step 1 of a commit, decide: pure. Ops in (in the order they were
 * submitted), changes and one outcome per op decided out (once the changes
 * pass the batch's size bound, the ops after are left for the next batch).
 * Compare-and-set checks, transaction compares, merge patches, lease
 * bookkeeping and revision arithmetic live here and nowhere else: each op
 * sees the committed state plus the changes decided before it in the same
 * batch, and each op that changes keys takes the next revision (a
 * transaction or a lease's expiry takes one for all its changes).
 */
import type { ValidSet, ValidTxn, ValidTxnOp, ValidUpdate } from '../abstract-key-value-store';
import type { Change, StoredEntry } from '../change';
import {
  KeyNotFoundError,
  LeaseNotFoundError,
  LeasePrivateError,
  RevisionMismatchError,
  StoreError,
  locatedIn,
  txnOpWhere,
} from '../errors';
import type { ClearResult, DeleteResult, Entry, JsonValue, Lease, SetResult, TxnOpResult, TxnResult } from '../key-value-store';
import { holds } from '../compare';
import { compareKeys } from '../key-order';
import { applyMergePatch } from '../merge-patch';
import { encodeValue } from '../value-rules';

interface Settle<T> {
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A validated write waiting for its batch. */
export type WriteOp =
  | ({ kind: 'set' } & ValidSet & Settle<SetResult>)
  | ({ kind: 'delete'; key: string; keyBytes: number; expectedRevision: number | undefined } & Settle<DeleteResult>)
  | ({ kind: 'clear'; prefix: string; prefixBytes: number } & Settle<ClearResult>)
  | ({ kind: 'update' } & ValidUpdate & Settle<Entry>)
  | ({ kind: 'txn'; txn: ValidTxn } & Settle<TxnResult>)
  | ({ kind: 'grant'; ttlMs: number } & Settle<Lease>)
  | ({ kind: 'revoke'; id: number } & Settle<ClearResult>)
  /** Leases whose time ran out (from the lease clock); nobody waits on the outcome. */
  | ({ kind: 'expire'; ids: number[] } & Settle<ClearResult>);

type OpResult = SetResult | DeleteResult | ClearResult | Entry | TxnResult | Lease;

/** What an op answers: the value its promise resolves with, or the error it rejects with. */
export type Outcome = { value: OpResult } | { error: Error };

/** A lease as decide sees it. */
export interface LeaseView {
  readonly ttlMs: number;
  readonly keys: ReadonlySet<string>;
  /** Made by a set with ttlMs for its one key: no other key may use it, and it goes when that key stops using it. */
  readonly private: boolean;
}

/** What the set and update rules read: keys and leases as they stand. */
interface KeyView {
  get(key: string): StoredEntry | undefined;
  lease(id: number): LeaseView | undefined;
  /** A transaction's view: whether an earlier op of it revoked this private lease (its key was set again, deleted or cleared). */
  revokedPrivate?(id: number): boolean;
}

/** The committed state decide reads. */
export interface DecideState {
  readonly revision: number;
  get(key: string): StoredEntry | undefined;
  /** Every key under the prefix ('' = all), in code point order, with its entry. */
  entriesUnder(prefix: string): Array<[string, StoredEntry]>;
  lease(id: number): LeaseView | undefined;
}

export interface DecideContext {
  /** Values a merge patch produces are checked against this. */
  maxValueBytes: number;
  /** A new lease id, not used by any lease before. */
  newLeaseId(): number;
}

export interface Decision {
  /** In revision order; empty if nothing changes. */
  changes: Change[];
  /**
   * outcomes[i] answers ops[i]. Fewer outcomes than ops: the changes passed
   * maxBytes before the rest were reached, and they were not decided.
   */
  outcomes: Outcome[];
  /** The store revision after the batch. */
  revision: number;
}

/** Whether an op reads whole sets of keys (a prefix, a lease's keys) from the committed state, and so must be decided in a batch of its own. */
export function goesAlone(op: WriteOp): boolean {
  if (op.kind === 'clear' || op.kind === 'revoke' || op.kind === 'expire') return true;
  return op.kind === 'txn' && [...op.txn.success, ...op.txn.failure].some((o) => o.type === 'clear');
}

/**
 * Decides a batch: ops that go alone (goesAlone) only ever come alone.
 * `maxBytes` bounds what one batch writes: once the keys and values of its
 * changes pass it (UTF-8 bytes, as the log holds them), the ops after are
 * left undecided. What an op writes is known only here: a merge patch or a
 * transaction's updates may make far larger values than their requests
 * carried. The op that passes the bound is decided whole (a transaction is
 * never split), and so is the first, however much it writes.
 */
export function decide(state: DecideState, ops: readonly WriteOp[], context: DecideContext, maxBytes = Infinity): Decision {
  const batch = new BatchView(state);
  const changes: Change[] = [];
  const outcomes: Outcome[] = [];
  let bytes = 0;
  for (let i = 0; i < ops.length && bytes < maxBytes; i++) {
    const op = ops[i];
    const before = changes.length;
    try {
      outcomes.push({ value: decideOp(batch, op, context, changes) });
    } catch (error) {
      // An op that fails changes nothing: decideOp adds its changes only once it cannot fail any more.
      outcomes.push({ error: error as Error });
    }
    if (changes.length === before) continue;
    // A set's and a delete's sizes came with the request; an update's or a transaction's are known from its changes.
    if (op.kind === 'set') bytes += op.keyBytes + op.valueBytes;
    else if (op.kind === 'delete') bytes += op.keyBytes;
    else for (let j = before; j < changes.length; j++) bytes += loggedBytes(changes[j]);
  }
  return { changes, outcomes, revision: batch.revision };
}

/** The UTF-8 bytes of the key (or prefix: a clear is logged by it alone) and value a change writes to the log. */
function loggedBytes(change: Change): number {
  switch (change.type) {
    case 'set':
      return Buffer.byteLength(change.key, 'utf8') + Buffer.byteLength(change.entry.valueJson, 'utf8');
    case 'delete':
      return Buffer.byteLength(change.key, 'utf8');
    case 'clear':
      return Buffer.byteLength(change.prefix, 'utf8');
    case 'lease-grant':
    case 'lease-revoke':
      return 0;
  }
}

/** The committed state plus what the batch decided so far. */
class BatchView implements KeyView {
  revision: number;
  // The first key the batch changes is kept in two fields, the rest in a Map made when a second key comes:
  // a batch of one write (a lone writer's every batch) makes no Map.
  private firstKey: string | undefined;
  private firstEntry: StoredEntry | null = null;
  private overlay: Map<string, StoredEntry | null> | undefined;
  /** Leases granted (or, null, revoked) earlier in the batch. */
  private granted: Map<number, LeaseView | null> | undefined;

  constructor(private readonly state: DecideState) {
    this.revision = state.revision;
  }

  get(key: string): StoredEntry | undefined {
    if (key === this.firstKey) return this.firstEntry ?? undefined;
    const o = this.overlay?.get(key);
    return o === undefined ? this.state.get(key) : (o ?? undefined);
  }

  entriesUnder(prefix: string): Array<[string, StoredEntry]> {
    return this.state.entriesUnder(prefix);
  }

  lease(id: number): LeaseView | undefined {
    const granted = this.granted?.get(id);
    return granted === null ? undefined : (granted ?? this.state.lease(id));
  }

  /** Records a change's effect for the ops after it in the batch. */
  note(change: Change): void {
    if (change.type === 'set') this.noteKey(change.key, change.entry);
    else if (change.type === 'delete') this.noteKey(change.key, null);
    else if (change.type === 'lease-grant') (this.granted ??= new Map()).set(change.id, grantedLease(change));
    else if (change.type === 'lease-revoke') (this.granted ??= new Map()).set(change.id, null);
  }

  private noteKey(key: string, entry: StoredEntry | null): void {
    if (this.firstKey === undefined || key === this.firstKey) {
      this.firstKey = key;
      this.firstEntry = entry;
    } else {
      (this.overlay ??= new Map()).set(key, entry);
    }
  }
}

/** A lease granted in this batch, as the ops after it see it (its keys are found through their entries). */
function grantedLease(change: Extract<Change, { type: 'lease-grant' }>): LeaseView {
  return { ttlMs: change.ttlMs, keys: new Set(), private: change.private === true };
}

/**
 * A key at revision r stops using `oldLease` (it is set onto another lease
 * or none, deleted or cleared): a private lease goes with it, revoked in the
 * same revision (it has no other key: none can be attached to it).
 */
function releasedLease(view: KeyView, oldLease: number, newLease: number, r: number): Change[] {
  if (oldLease === 0 || oldLease === newLease || view.lease(oldLease)?.private !== true) return [];
  return [{ type: 'lease-revoke', id: oldLease, revision: r }];
}

/** A clear at revision r: the clear, then the revocation of the private leases of the keys it removes. */
function clearChanges(view: KeyView, prefix: string, removed: Array<[string, StoredEntry]>, r: number): Change[] {
  const made: Change[] = [{ type: 'clear', prefix, revision: r, removed }];
  for (const [, entry] of removed) made.push(...releasedLease(view, entry.lease, 0, r));
  return made;
}

/** Adds an op's changes to the batch (once the op can no longer fail). */
function commit(view: BatchView, changes: Change[], made: Change[]): void {
  for (const c of made) {
    view.note(c);
    changes.push(c);
  }
}

function decideOp(view: BatchView, op: WriteOp, context: DecideContext, changes: Change[]): OpResult {
  switch (op.kind) {
    case 'set': {
      checkExpected(view, op.key, op.expectedRevision);
      const r = view.revision + 1;
      commit(view, changes, setChanges(view, op, r, context));
      view.revision = r;
      return { revision: r };
    }
    case 'delete': {
      const prev = view.get(op.key);
      // Deleting a missing key "only if missing" is a no-op, not a conflict.
      if (!(prev === undefined && op.expectedRevision === 0)) checkExpected(view, op.key, op.expectedRevision);
      if (prev === undefined) return { deleted: false, revision: view.revision };
      const r = ++view.revision;
      commit(view, changes, [{ type: 'delete', key: op.key, revision: r, prev }, ...releasedLease(view, prev.lease, 0, r)]);
      return { deleted: true, revision: r };
    }
    case 'clear': {
      const removed = view.entriesUnder(op.prefix);
      // Removing nothing is no change: the revision stays.
      if (removed.length === 0) return { deletedCount: 0, revision: view.revision };
      const r = ++view.revision;
      commit(view, changes, clearChanges(view, op.prefix, removed, r));
      return { deletedCount: removed.length, revision: r };
    }
    case 'update': {
      checkExpected(view, op.key, op.expectedRevision);
      const r = view.revision + 1;
      const change = updateChange(view, op, r, context);
      commit(view, changes, [change]);
      view.revision = r;
      return toEntry(op.key, change.entry);
    }
    case 'txn':
      return decideTxn(view, op.txn, context, (made) => commit(view, changes, made));
    case 'grant': {
      const id = context.newLeaseId();
      commit(view, changes, [{ type: 'lease-grant', id, ttlMs: op.ttlMs, revision: view.revision }]);
      return { id, ttlMs: op.ttlMs };
    }
    case 'revoke': {
      const lease = view.lease(op.id);
      if (lease === undefined) throw new LeaseNotFoundError(op.id);
      const made = revokeChanges(view, op.id, lease);
      commit(view, changes, made);
      return { deletedCount: made.length - 1, revision: view.revision };
    }
    case 'expire': {
      let deleted = 0;
      for (const id of op.ids) {
        const lease = view.lease(id);
        // Revoked meanwhile: nothing left to expire.
        if (lease === undefined) continue;
        const made = revokeChanges(view, id, lease);
        commit(view, changes, made);
        deleted += made.length - 1;
      }
      return { deletedCount: deleted, revision: view.revision };
    }
  }
}

function checkExpected(view: BatchView, key: string, expected: number | undefined): void {
  if (expected === undefined) return;
  const modRevision = view.get(key)?.modRevision ?? 0;
  if (expected !== modRevision) throw new RevisionMismatchError(key, expected, modRevision);
}

/**
 * A set at revision r: the new entry, with a private lease granted first if
 * it asks for a ttl, and the key's old private lease revoked after it if it
 * no longer uses it. Only the key that has a private lease may name it.
 */
function setChanges(view: KeyView, op: Omit<ValidSet, 'expectedRevision'>, r: number, context: DecideContext): Change[] {
  const made: Change[] = [];
  const prev = view.get(op.key);
  let lease = op.lease;
  if (lease !== 0) {
    const named = view.lease(lease);
    // Within a transaction, as on the etcd engine: a private lease stays another key's, whatever the ops before did to it.
    if (named === undefined)
      throw view.revokedPrivate?.(lease) === true ? new LeasePrivateError(lease, op.key) : new LeaseNotFoundError(lease);
    if (named.private && prev?.lease !== lease) throw new LeasePrivateError(lease, op.key);
  }
  if (op.ttlMs !== undefined) {
    lease = context.newLeaseId();
    made.push({ type: 'lease-grant', id: lease, ttlMs: op.ttlMs, revision: r, private: true });
  }
  const entry: StoredEntry = {
    valueJson: op.valueJson,
    createRevision: prev === undefined ? r : prev.createRevision,
    modRevision: r,
    version: prev === undefined ? 1 : prev.version + 1,
    lease,
  };
  made.push({ type: 'set', key: op.key, revision: r, entry, prev });
  if (prev !== undefined) made.push(...releasedLease(view, prev.lease, lease, r));
  return made;
}

/** An update at revision r: the merge patch applied to the current value (or {}), checked like any value. The key keeps its lease. */
function updateChange(
  view: KeyView,
  op: Omit<ValidUpdate, 'expectedRevision'>,
  r: number,
  context: DecideContext,
): Extract<Change, { type: 'set' }> {
  const prev = view.get(op.key);
  if (prev === undefined && !op.createIfMissing) throw new KeyNotFoundError(op.key);
  const current = prev === undefined ? {} : (JSON.parse(prev.valueJson) as JsonValue);
  const { json } = encodeValue(op.key, applyMergePatch(current, op.patch), context.maxValueBytes, 'patched');
  const entry: StoredEntry = {
    valueJson: json,
    createRevision: prev === undefined ? r : prev.createRevision,
    modRevision: r,
    version: prev === undefined ? 1 : prev.version + 1,
    lease: prev?.lease ?? 0,
  };
  return { type: 'set', key: op.key, revision: r, entry, prev };
}

/** A lease's revocation: the lease, then each of its keys deleted, all at one new revision (the revision moves only if there are keys). */
function revokeChanges(view: BatchView, id: number, lease: LeaseView): Change[] {
  const keys = [...lease.keys].filter((key) => view.get(key)?.lease === id);
  const r = keys.length === 0 ? view.revision : view.revision + 1;
  const made: Change[] = [{ type: 'lease-revoke', id, revision: r }];
  for (const key of keys.sort(compareKeys)) made.push({ type: 'delete', key, revision: r, prev: view.get(key) as StoredEntry });
  view.revision = r;
  return made;
}

function decideTxn(view: BatchView, txn: ValidTxn, context: DecideContext, commit: (made: Change[]) => void): TxnResult {
  const succeeded = txn.compare.every((c) => holds(c, view.get(c.key)));
  const ops = succeeded ? txn.success : txn.failure;
  const r = view.revision + 1;
  // The transaction's own view: its gets see its earlier writes; nothing reaches the batch unless every op succeeds.
  const local = new TxnView(view);
  const made: Change[] = [];
  const pending: Array<(revision: number) => TxnOpResult> = [];
  ops.forEach((op, i) => {
    try {
      pending.push(decideTxnOp(local, op, r, context, made));
    } catch (error) {
      // Which of up to 128 ops it was.
      if (error instanceof StoreError) throw locatedIn(error, txnOpWhere(succeeded ? 'success' : 'failure', i, op));
      throw error;
    }
  });
  const revision = made.length > 0 ? r : view.revision;
  commit(made);
  view.revision = revision;
  return { succeeded, revision, results: pending.map((result) => result(revision)) };
}

/** A transaction's writes so far, over the batch's view. */
class TxnView implements KeyView {
  private readonly overlay = new Map<string, StoredEntry | null>();
  /** Leases the transaction granted (or, null, revoked) so far. */
  private readonly granted = new Map<number, LeaseView | null>();
  /** Private leases the transaction revoked so far. */
  private readonly privateRevoked = new Set<number>();

  constructor(readonly batch: BatchView) {}

  get(key: string): StoredEntry | undefined {
    const o = this.overlay.get(key);
    return o === undefined ? this.batch.get(key) : (o ?? undefined);
  }

  lease(id: number): LeaseView | undefined {
    const granted = this.granted.get(id);
    return granted === null ? undefined : (granted ?? this.batch.lease(id));
  }

  note(change: Change): void {
    if (change.type === 'set') this.overlay.set(change.key, change.entry);
    else if (change.type === 'delete') this.overlay.set(change.key, null);
    else if (change.type === 'clear') for (const [key] of change.removed) this.overlay.set(key, null);
    else if (change.type === 'lease-grant') this.granted.set(change.id, grantedLease(change));
    else {
      if (this.lease(change.id)?.private === true) this.privateRevoked.add(change.id);
      this.granted.set(change.id, null);
    }
  }

  revokedPrivate(id: number): boolean {
    return this.privateRevoked.has(id);
  }
}

/** Decides one op of a transaction at revision r; returns how to report it once the transaction's revision is known. */
function decideTxnOp(view: TxnView, op: ValidTxnOp, r: number, context: DecideContext, made: Change[]): (revision: number) => TxnOpResult {
  const add = (changes: Change[]): void => {
    for (const c of changes) {
      view.note(c);
      made.push(c);
    }
  };
  switch (op.type) {
    case 'get': {
      const entry = view.get(op.key);
      const result: TxnOpResult = { type: 'get', entry: entry === undefined ? undefined : toEntry(op.key, entry) };
      return () => result;
    }
    case 'set':
      add(setChanges(view, op, r, context));
      return () => ({ type: 'set', revision: r });
    case 'delete': {
      const prev = view.get(op.key);
      if (prev !== undefined) add([{ type: 'delete', key: op.key, revision: r, prev }, ...releasedLease(view, prev.lease, 0, r)]);
      return (revision) => ({ type: 'delete', deleted: prev !== undefined, revision });
    }
    case 'clear': {
      // Clears come alone in their batch (goesAlone), and a transaction writes no key twice: the committed state is current.
      const removed = view.batch.entriesUnder(op.prefix);
      if (removed.length > 0) add(clearChanges(view, op.prefix, removed, r));
      return (revision) => ({ type: 'clear', deletedCount: removed.length, revision });
    }
    case 'update': {
      const change = updateChange(view, op, r, context);
      add([change]);
      return () => ({ type: 'update', entry: toEntry(op.key, change.entry) });
    }
  }
}

export function toEntry(key: string, entry: StoredEntry): Entry {
  return {
    key,
    value: JSON.parse(entry.valueJson) as JsonValue,
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
    lease: entry.lease,
  };
}
