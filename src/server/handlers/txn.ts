import { Compare_CompareResult, type Compare as WireCompare, type RequestOp, type TxnRequest } from '../../gen/kv/v1/kv';
import type { Compare, JsonValue, TxnOp, TxnResult } from '../../store/key-value-store';
import type { Access } from '../access';
import type { CallContext } from '../call-context';
import { locatedIn } from '../../store/errors';
import { InvalidArgumentError } from '../service-errors';
import { checkWriteOnLeaseKeys } from './leases';
import { leaseOptions, requiredValue } from './set';
import { requiredPatch } from './update';

/**
 * Txn: compares, then the success or the failure ops, as one change. Every
 * key and prefix of every compare and op is authorized before anything is
 * decided, so a denied Txn writes nothing.
 */
export async function handleTxn({ store, access, deadline }: CallContext, request: TxnRequest): Promise<TxnResult> {
  const compare = request.compare.map((c, i) => toCompare(c, i));
  const success = request.success.map((op, i) => toOp(op, `success op ${i}`));
  const failure = request.failure.map((op, i) => toOp(op, `failure op ${i}`));
  for (const c of compare) access.key('read', c.key);
  // Which branch ran, once known: a Clear in the other one is no admin action to audit.
  const outcome: { succeeded?: boolean } = {};
  for (const op of success) authorize(access, op, () => outcome.succeeded !== false);
  for (const op of failure) authorize(access, op, () => outcome.succeeded !== true);
  if (access.restricted) {
    // Attaching a key to a lease also needs write on the keys already attached to it (leases.ts).
    const leases = new Set([...success, ...failure].flatMap((op) => (op.type === 'set' && op.lease !== undefined ? [op.lease] : [])));
    for (const lease of leases) await checkWriteOnLeaseKeys(store, access, lease);
  }
  const result = await store.txn({ compare, success, failure }, { deadline });
  outcome.succeeded = result.succeeded;
  return result;
}

/** `ran`: whether the op's branch ran (true until the outcome is known). */
function authorize(access: Access, op: TxnOp, ran: () => boolean): void {
  if (op.type === 'get') access.key('read', op.key);
  else if (op.type === 'clear') access.prefix('admin', op.prefix, ran);
  else access.key('write', op.key);
}

const RESULTS: Partial<Record<Compare_CompareResult, Compare['result']>> = {
  [Compare_CompareResult.COMPARE_RESULT_EQUAL]: 'equal',
  [Compare_CompareResult.COMPARE_RESULT_NOT_EQUAL]: 'not_equal',
  [Compare_CompareResult.COMPARE_RESULT_LESS]: 'less',
  [Compare_CompareResult.COMPARE_RESULT_GREATER]: 'greater',
};

/** As the store names a compare it refuses (abstract-key-value-store.ts): "compare 0 on key "a": ...". */
function toCompare(c: WireCompare, index: number): Compare {
  const where = `compare ${index} on key ${JSON.stringify(c.key)}`;
  const result = RESULTS[c.result];
  if (result === undefined) throw new InvalidArgumentError(`${where}: result must be EQUAL, NOT_EQUAL, LESS or GREATER`);
  const targets = (['version', 'createRevision', 'modRevision', 'lease', 'value'] as const).filter((t) => c[t] !== undefined);
  if (targets.length !== 1)
    throw new InvalidArgumentError(`${where}: give exactly one of version, create_revision, mod_revision, lease and value`);
  const target = targets[0];
  if (target === 'value') return { key: c.key, result, target, value: c.value as JsonValue };
  return { key: c.key, result, target, number: c[target] as number };
}

function toOp(op: RequestOp, where: string): TxnOp {
  const kinds = (['get', 'set', 'delete', 'clear', 'update'] as const).filter((k) => op[k] !== undefined);
  if (kinds.length !== 1) throw new InvalidArgumentError(`${where}: give exactly one of get, set, delete, clear and update`);
  const noExpected = (expected: number | undefined, key: string): void => {
    if (expected !== undefined) {
      throw new InvalidArgumentError(
        `${where} on key ${JSON.stringify(key)}: expected_revision is not allowed in a Txn (use a compare on mod_revision)`,
      );
    }
  };
  // What the op's own checks refuse says which op it is, as the store's do.
  const located = <T>(key: string, make: () => T): T => {
    try {
      return make();
    } catch (error) {
      if (error instanceof Error && 'code' in error) throw locatedIn(error, `${where} on key ${JSON.stringify(key)}`);
      throw error;
    }
  };
  if (op.get) return { type: 'get', key: op.get.key };
  const set = op.set;
  if (set) {
    noExpected(set.expectedRevision, set.key);
    return located(set.key, () => ({ type: 'set', key: set.key, value: requiredValue(set), ...leaseOptions(set) }));
  }
  if (op.delete) {
    noExpected(op.delete.expectedRevision, op.delete.key);
    return { type: 'delete', key: op.delete.key };
  }
  if (op.clear) return { type: 'clear', prefix: op.clear.prefix };
  const update = op.update as NonNullable<RequestOp['update']>;
  noExpected(update.expectedRevision, update.key);
  return located(update.key, () => ({
    type: 'update',
    key: update.key,
    patch: requiredPatch(update),
    createIfMissing: update.createIfMissing,
  }));
}
