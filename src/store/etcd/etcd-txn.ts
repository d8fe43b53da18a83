/**
 * kv transactions (and updates) on etcd, optimistically: read every key the
 * compares and update ops name in one snapshot (one read-only etcd Txn),
 * decide here with the same compare rules as the file engine (JSON
 * equality, not byte equality), then write the chosen branch in one etcd
 * Txn guarded by the mod_revision each of those keys had. If one changed
 * in between, the guard fails and the caller reads and decides again. So
 * compares hold at the revision of the write, every write of the branch
 * takes that one revision, and a watcher sees them in one batch.
 *
 * Private leases: a set naming one needs its key to hold it now (the key is
 * read with the others, so the guard covers it); the branch's puts and
 * deletes return the entries they replace, and the private leases those
 * held (other than the one the key keeps) are handed back for the caller to
 * revoke once the write has succeeded. A clear is one DeleteRange, like
 * every other op (etcd's --max-txn-ops bounds a branch's etcd ops, so a
 * branch kv accepts must not take more), and the leases of the keys it
 * removed are read after the write, as they were at the revision before it.
 *
 * The snapshot read, and a branch of only gets, change nothing: they are
 * reads, retried while etcd is briefly unavailable and never reported as a
 * write of unknown outcome. A get of the branch is answered in the write's
 * own etcd Txn, so it can meet data kv did not write only after the
 * branch's writes were applied: the call then fails saying so.
 */
import {
  EtcdLeaseInvalidError,
  GRPCNotFoundError,
  type Etcd3,
  type ICompare,
  type IKeyValue,
  type IPutRequest,
  type IRequestOp,
  type ITxnResponse,
} from 'etcd3';
import type { ValidTxn, ValidTxnOp } from '../abstract-key-value-store';
import type { StoredEntry } from '../change';
import {
  BackendUnavailableError,
  ForeignDataError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseNotFoundError,
  LeasePrivateError,
  NotSentError,
  RevisionMismatchError,
  StoreError,
  locatedIn,
  txnOpWhere,
} from '../errors';
import { holds } from '../compare';
import type { Entry, JsonValue, TxnOpResult, TxnResult } from '../key-value-store';
import { applyMergePatch } from '../merge-patch';
import { encodeValue } from '../value-rules';
import { readWithRetry, writeOnce, type AttemptOptions } from './etcd-connection';
import { isTooManyTxnOps, tooManyTxnOps } from './etcd-errors';
import { toEntry, type EtcdKeyspace } from './etcd-keyspace';
import { isPrivateLease } from './etcd-leases';

/**
 * When the keys change under a transaction, it reads and decides again
 * after a pause drawn at random below a bound that starts here and doubles
 * up to TXN_MAX_PAUSE_MS (full jitter: writers that met each other spread
 * out instead of meeting again), for as long as the store's call deadline.
 */
export const TXN_FIRST_PAUSE_MS = 5;
export const TXN_MAX_PAUSE_MS = 200;

/** The Put of one of the transaction's set ops (the same op object on every try: it can keep its private lease). */
type PutFor = (op: Extract<ValidTxnOp, { type: 'set' }>) => Promise<IPutRequest>;

/** A transaction etcd applied (or, with only gets, answered). */
export interface AppliedTxn {
  result: TxnResult;
  /** A get of the branch met data kv did not write, once the branch's writes were applied: the call fails with this, the writes stand. */
  unreadable?: ForeignDataError;
}

export async function runOptimisticTxn(
  client: Etcd3,
  keyspace: EtcdKeyspace,
  txn: ValidTxn,
  expectedRevision: number | undefined,
  /** A Txn call: an op's error names the op ("success op 2 on key ..."), as the file engine's do. */
  locateOps: boolean,
  maxValueBytes: number,
  /** Until when reads (the snapshot, a branch of only gets) are retried while etcd is briefly unavailable. */
  readUntil: number,
  /** The deadline of one try of such a read (attemptMsOf the store's --etcd-timeout-ms). */
  attemptMs: number,
  putFor: PutFor,
  /** Filled on success: the private leases the write took its keys off, to revoke. */
  released: number[],
): Promise<AppliedTxn | 'conflict'> {
  const watched = [
    ...new Set([
      ...txn.compare.map((c) => c.key),
      ...[...txn.success, ...txn.failure].flatMap((o) =>
        o.type === 'update' || (o.type === 'set' && isPrivateLease(o.lease)) ? [o.key] : [],
      ),
    ]),
  ];
  const view = new Map<string, { entry: StoredEntry; kv: IKeyValue }>();
  let readRevision = 0;
  if (watched.length > 0) {
    let snapshot: ITxnResponse;
    try {
      snapshot = await readWithRetry(
        (attempt) => client.kv.txn({ success: watched.map((key) => ({ request_range: { key: keyspace.key(key) } })) }, attempt),
        Math.max(0, readUntil - Date.now()),
        'read',
        attemptMs,
      );
    } catch (error) {
      if (error instanceof InvalidArgumentError && isTooManyTxnOps(error.cause)) throw tooManyTxnOps(error.cause as Error, watched.length);
      const mayWrite = [...txn.success, ...txn.failure].some((op) => op.type !== 'get');
      if (!mayWrite || !(error instanceof BackendUnavailableError)) throw error;
      throw new NotSentError(`${error.message}; that read comes before any write, so nothing was applied: try again`, {
        cause: error.cause,
      });
    }
    readRevision = Number(snapshot.header.revision);
    watched.forEach((key, i) => {
      const kv = snapshot.responses[i]?.response_range.kvs[0];
      if (kv !== undefined) view.set(key, { kv, entry: keyspace.decodeEntry(kv, key).stored });
    });
  }
  const succeeded = txn.compare.every((c) => holds(c, view.get(c.key)?.entry));
  const branch = succeeded ? txn.success : txn.failure;
  if (expectedRevision !== undefined) {
    const key = (branch[0] as Extract<ValidTxnOp, { type: 'update' }>).key;
    const current = view.get(key)?.entry.modRevision ?? 0;
    if (current !== expectedRevision) throw new RevisionMismatchError(key, expectedRevision, current);
  }

  /** One etcd op per op of the branch, in order. */
  const requests: IRequestOp[] = [];
  const updated: Array<{ value: JsonValue; prev: StoredEntry | undefined } | undefined> = [];
  for (const [i, op] of branch.entries()) {
    updated.push(undefined);
    try {
      await decideOp(op);
    } catch (error) {
      // Which of up to 128 ops it was, as the file engine says it.
      if (locateOps && error instanceof StoreError) throw locatedIn(error, txnOpWhere(succeeded ? 'success' : 'failure', i, op));
      throw error;
    }
  }
  async function decideOp(op: ValidTxnOp): Promise<void> {
    switch (op.type) {
      case 'get':
        requests.push({ request_range: { key: keyspace.key(op.key) } });
        break;
      case 'set':
        // Only the key that holds a private lease may name it (a ttl's own lease is new, and named by no one else).
        if (op.ttlMs === undefined && isPrivateLease(op.lease) && view.get(op.key)?.entry.lease !== op.lease) {
          throw new LeasePrivateError(op.lease, op.key);
        }
        requests.push({ request_put: { ...(await putFor(op)), prev_kv: true } });
        break;
      case 'delete':
        requests.push({ request_delete_range: { key: keyspace.key(op.key), prev_kv: true } });
        break;
      case 'clear': {
        // Not prev_kv: the removed values could be past gRPC's limits. Their keys' leases are read after (clearedLeases).
        const range = keyspace.prefixRange(op.prefix);
        requests.push({ request_delete_range: { key: range.key, range_end: range.rangeEnd } });
        break;
      }
      case 'update': {
        const prev = view.get(op.key)?.entry;
        if (prev === undefined && !op.createIfMissing) throw new KeyNotFoundError(op.key);
        const current = prev === undefined ? {} : (JSON.parse(prev.valueJson) as JsonValue);
        const value = applyMergePatch(current, op.patch);
        const { json } = encodeValue(op.key, value, maxValueBytes, 'patched');
        // The key keeps its lease, as in the file engine.
        requests.push({ request_put: { key: keyspace.key(op.key), value: Buffer.from(json, 'utf8'), lease: prev?.lease ?? 0 } });
        updated[updated.length - 1] = { value: JSON.parse(json) as JsonValue, prev };
        break;
      }
    }
  }
  const guard: ICompare[] = watched.map((key) => ({
    key: keyspace.key(key),
    target: 'Mod',
    result: 'Equal',
    mod_revision: view.get(key)?.entry.modRevision ?? 0,
  }));
  const write = (attempt?: AttemptOptions): Promise<ITxnResponse> =>
    client.kv.txn({ compare: guard, success: requests, failure: [] }, attempt);
  const writes = branch.some((op) => op.type !== 'get');
  // The caller has stopped waiting (its reads took that long, etcd being down): sent now, the write could land after the caller was
  // told DEADLINE_EXCEEDED and read the key again.
  if (writes && txn.deadline !== undefined && Date.now() >= txn.deadline) {
    throw new NotSentError(`the call's deadline passed before its write was sent to etcd; nothing was applied: try again`);
  }
  let res: ITxnResponse;
  try {
    res = writes ? await writeOnce(write) : await readWithRetry(write, Math.max(0, readUntil - Date.now()), 'read', attemptMs);
  } catch (error) {
    if (error instanceof EtcdLeaseInvalidError || error instanceof GRPCNotFoundError) {
      const leased = branch.flatMap((o, index) => (o.type === 'set' && o.lease !== 0 ? [{ index, key: o.key, lease: o.lease }] : []));
      if (leased.length > 0) throw await missingLease(client, leased, succeeded ? 'success' : 'failure', attemptMs);
    }
    throw error;
  }
  if (!res.succeeded) return 'conflict';
  const revision = Number(res.header.revision);
  const release = (lease: number, kept = 0): void => {
    if (lease !== kept && isPrivateLease(lease) && !released.includes(lease)) released.push(lease);
  };
  branch.forEach((op, i) => {
    const response = res.responses[i];
    if (op.type === 'set') release(Number(response?.response_put.prev_kv?.lease ?? 0), Number(requests[i].request_put?.lease ?? 0));
    if (op.type === 'delete') for (const kv of response?.response_delete_range.prev_kvs ?? []) release(Number(kv.lease));
  });
  for (const lease of await clearedLeases(client, keyspace, branch, res)) release(lease);
  let unreadable: ForeignDataError | undefined;
  const results = branch.map((op, i): TxnOpResult => {
    const response = res.responses[i];
    switch (op.type) {
      case 'get': {
        const kv = response?.response_range.kvs[0];
        if (kv === undefined) return { type: 'get', entry: undefined };
        try {
          return { type: 'get', entry: toEntry(op.key, keyspace.decodeEntry(kv, op.key)) };
        } catch (error) {
          if (!(error instanceof ForeignDataError) || !writes) throw error;
          unreadable ??= new ForeignDataError(
            `${error.message} (the transaction's writes were applied at revision ${revision}; only its get of this key could not be answered)`,
          );
          return { type: 'get', entry: undefined };
        }
      }
      case 'set':
        return { type: 'set', revision };
      case 'delete':
        return { type: 'delete', deleted: Number(response?.response_delete_range.deleted) > 0, revision };
      case 'clear':
        return { type: 'clear', deletedCount: Number(response?.response_delete_range.deleted), revision };
      case 'update': {
        const { value, prev } = updated[i] as { value: JsonValue; prev: StoredEntry | undefined };
        const entry: Entry = {
          key: op.key,
          value,
          createRevision: prev?.createRevision ?? revision,
          modRevision: revision,
          version: (prev?.version ?? 0) + 1,
          lease: prev?.lease ?? 0,
        };
        return { type: 'update', entry };
      }
    }
  });
  return { result: { succeeded, revision: Math.max(revision, readRevision), results }, unreadable };
}

/**
 * The leases of the keys the branch's clears removed, read (keys only) at
 * the revision before the write's: a branch never writes a key it clears,
 * so those are the keys removed. A read that fails (that revision already
 * compacted) leaves its leases to expire at their ttl.
 */
async function clearedLeases(client: Etcd3, keyspace: EtcdKeyspace, branch: readonly ValidTxnOp[], res: ITxnResponse): Promise<number[]> {
  const before = Number(res.header.revision) - 1;
  const leases = await Promise.all(
    branch.map(async (op, i) => {
      if (op.type !== 'clear' || Number(res.responses[i]?.response_delete_range.deleted ?? 0) === 0) return [];
      const range = keyspace.prefixRange(op.prefix);
      try {
        const { kvs } = await client.kv.range({ key: range.key, range_end: range.rangeEnd, keys_only: true, revision: before });
        return kvs.map((kv) => Number(kv.lease));
      } catch {
        return [];
      }
    }),
  );
  return leases.flat();
}

/**
 * etcd refused a transaction for a lease it does not have, without saying
 * which: the first op whose lease etcd does not know (asked one by one: this
 * is the error path), else the first that names one.
 */
async function missingLease(
  client: Etcd3,
  leased: ReadonlyArray<{ index: number; key: string; lease: number }>,
  branch: 'success' | 'failure',
  attemptMs: number,
): Promise<LeaseNotFoundError> {
  const asked = new Map<number, boolean>();
  for (const op of leased) {
    let gone = asked.get(op.lease);
    if (gone === undefined) {
      gone = await client.leaseClient.leaseTimeToLive({ ID: op.lease }, { deadline: Date.now() + attemptMs }).then(
        (res) => Number(res.TTL) < 0,
        () => false,
      );
      asked.set(op.lease, gone);
    }
    if (gone) return new LeaseNotFoundError(op.lease, { branch, ...op });
  }
  return new LeaseNotFoundError(leased[0].lease, { branch, ...leased[0] });
}
