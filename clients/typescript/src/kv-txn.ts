import {
  type Compare as WireCompare,
  Compare_CompareResult,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from './gen/kv/v1/kv';
import { KvError } from './kv-error';
import { status } from '@grpc/grpc-js';
import { type JsonCompatible, type JsonValue, type KvEntry, toKvEntry } from './kv-entry';
import { assertJsonValue } from './json-value-check';
import { assertKeyText } from './key-check';
import { assertOptions, describeArgument, invalidArgument, isBoolean, isObject } from './options-check';
import { ANY_WHOLE_NUMBER, assertWholeNumber, TIME_TO_LIVE, wholeNumber } from './whole-number-check';

/** How a compare relates the key's state to the given value: equal, not equal, less, greater. */
export type CompareOp = '==' | '!=' | '<' | '>';

/** One condition of a transaction (build them with Compare). */
export interface TxnCompare {
  readonly wire: WireCompare;
}

/** One op of a transaction (build them with Op). */
export interface TxnOp {
  readonly kind: 'get' | 'set' | 'delete' | 'clear' | 'update';
  readonly wire: RequestOp;
}

const RESULT: Record<CompareOp, Compare_CompareResult> = {
  '==': Compare_CompareResult.COMPARE_RESULT_EQUAL,
  '!=': Compare_CompareResult.COMPARE_RESULT_NOT_EQUAL,
  '<': Compare_CompareResult.COMPARE_RESULT_LESS,
  '>': Compare_CompareResult.COMPARE_RESULT_GREATER,
};

const compare = (key: string, op: CompareOp, target: Partial<WireCompare>): TxnCompare => {
  assertKeyText(key, 'key');
  // An operator it does not know would be sent as "unspecified", and the server would judge the compare by that.
  if (typeof op !== 'string' || !Object.hasOwn(RESULT, op)) {
    throw invalidArgument(`compare operator must be one of '==', '!=', '<', '>', got ${describeArgument(op)}`);
  }
  return { wire: { key, result: RESULT[op], ...target } };
};

/**
 * Conditions on a key's state as the transaction begins. A missing key has
 * revisions 0, lease 0 and no value (every value compare on it is false).
 */
export const Compare = {
  /** The key's mod_revision; `Compare.modRevision(key, '==', 0)` means "the key does not exist". */
  modRevision: (key: string, op: CompareOp, revision: number): TxnCompare => {
    assertWholeNumber(revision, 'compared modRevision', ANY_WHOLE_NUMBER);
    return compare(key, op, { modRevision: revision });
  },
  createRevision: (key: string, op: CompareOp, revision: number): TxnCompare => {
    assertWholeNumber(revision, 'compared createRevision', ANY_WHOLE_NUMBER);
    return compare(key, op, { createRevision: revision });
  },
  version: (key: string, op: CompareOp, version: number): TxnCompare => {
    assertWholeNumber(version, 'compared version', ANY_WHOLE_NUMBER);
    return compare(key, op, { version });
  },
  lease: (key: string, op: CompareOp, lease: number): TxnCompare => {
    assertWholeNumber(lease, 'compared lease', ANY_WHOLE_NUMBER);
    return compare(key, op, { lease });
  },
  /** JSON equality for == and != (member order does not matter); < and > for numbers and strings. */
  value: <T = JsonValue>(key: string, op: CompareOp, value: T & JsonCompatible<T>): TxnCompare => {
    assertJsonValue(value, 'compare value');
    return compare(key, op, { value });
  },
};

/** The ops a transaction can run. Values and patches are typed as KvClient.set's: T may be an interface, checked as JSON. */
export const Op = {
  get: (key: string): TxnOp => {
    assertKeyText(key, 'key');
    return { kind: 'get', wire: { get: { key } } };
  },
  set: <T = JsonValue>(key: string, value: T & JsonCompatible<T>, options: { lease?: number; ttlMs?: number } = {}): TxnOp => {
    assertKeyText(key, 'key');
    assertJsonValue(value, 'value');
    assertOptions(options, 'Op.set', { lease: wholeNumber(), ttlMs: wholeNumber(TIME_TO_LIVE) });
    return {
      kind: 'set',
      wire: { set: { key, value, expectedRevision: undefined, lease: options.lease ?? 0, ttlMs: options.ttlMs ?? 0 } },
    };
  },
  delete: (key: string): TxnOp => {
    assertKeyText(key, 'key');
    return { kind: 'delete', wire: { delete: { key, expectedRevision: undefined } } };
  },
  clear: (prefix: string): TxnOp => {
    assertKeyText(prefix, 'prefix');
    return { kind: 'clear', wire: { clear: { prefix } } };
  },
  /** An RFC 7396 JSON merge patch. */
  update: <P = JsonValue>(key: string, patch: P & JsonCompatible<P>, options: { createIfMissing?: boolean } = {}): TxnOp => {
    assertKeyText(key, 'key');
    assertJsonValue(patch, 'patch');
    assertOptions(options, 'Op.update', { createIfMissing: isBoolean });
    return {
      kind: 'update',
      wire: { update: { key, patch, expectedRevision: undefined, createIfMissing: options.createIfMissing ?? false } },
    };
  },
};

/** What one op of the branch that ran gave, in the same position. */
export type TxnOpResult =
  | { type: 'get'; entry: KvEntry | undefined }
  | { type: 'set'; revision: number }
  | { type: 'delete'; deleted: boolean; revision: number }
  | { type: 'clear'; deletedCount: number; revision: number }
  | { type: 'update'; entry: KvEntry };

export interface TxnResult {
  /** True if every compare held (the `then` ops ran), false if the `else` ops ran. */
  succeeded: boolean;
  /** The transaction's revision if it wrote anything, else the revision it read at. */
  revision: number;
  results: TxnOpResult[];
}

/**
 * A transaction, built fluently and committed once:
 *
 * ```ts
 * const { succeeded } = await kv
 *   .txn()
 *   .if(Compare.value('acct/a', '>', 30))
 *   .then(Op.set('acct/a', 70), Op.set('acct/b', 30))
 *   .else(Op.get('acct/a'))
 *   .commit();
 * ```
 */
export class TxnBuilder {
  private readonly request: TxnRequest = { compare: [], success: [], failure: [] };

  constructor(private readonly send: (request: TxnRequest) => Promise<TxnResponse>) {}

  /** Conditions that must all hold for the `then` ops to run. */
  if(...compares: TxnCompare[]): this {
    for (const c of compares) assertCompare(c);
    this.request.compare.push(...compares.map((c) => c.wire));
    return this;
  }

  then(...ops: TxnOp[]): this {
    // `await` calls then(resolve, reject) on anything with a then method: the builder was awaited, not committed.
    if (ops.length === 2 && typeof ops[0] === 'function' && typeof ops[1] === 'function') {
      throw invalidArgument('a transaction runs on commit(): await kv.txn().if(...).then(...).else(...).commit(), not the builder itself');
    }
    for (const o of ops) assertOp(o, 'then');
    this.request.success.push(...ops.map((o) => o.wire));
    return this;
  }

  else(...ops: TxnOp[]): this {
    for (const o of ops) assertOp(o, 'else');
    this.request.failure.push(...ops.map((o) => o.wire));
    return this;
  }

  /** Sends it: all of it commits as one change with one revision, or nothing does. */
  async commit(): Promise<TxnResult> {
    const response = await this.send(this.request);
    return { succeeded: response.succeeded, revision: response.revision, results: response.responses.map(toResult) };
  }
}

const OP_KINDS: readonly TxnOp['kind'][] = ['get', 'set', 'delete', 'clear', 'update'];

/** Whether `value` has the shape Op builds: one of its kinds, its request under that name. */
function isOp(value: unknown): value is TxnOp {
  if (!isObject(value)) return false;
  const { kind, wire } = value as Partial<TxnOp>;
  return OP_KINDS.includes(kind as TxnOp['kind']) && isObject(wire) && isObject(wire[kind as TxnOp['kind']]);
}

/** Whether `value` has the shape Compare builds: a key and an operator, and no kind. */
function isCompare(value: unknown): value is TxnCompare {
  if (!isObject(value) || 'kind' in value) return false;
  const { wire } = value as Partial<TxnCompare>;
  return isObject(wire) && typeof wire.key === 'string' && typeof wire.result === 'number';
}

/** What was passed where a compare or an op goes, for a message. */
function describeTxnArgument(value: unknown, builder: 'Op' | 'Compare'): string {
  if (isOp(value)) return 'an op';
  if (isCompare(value)) return 'a compare';
  return isObject(value) ? `an object that ${builder} did not build` : describeArgument(value);
}

/** Refuses, before it is sent, a compare Compare did not build: a string, a raw object, an op. */
function assertCompare(value: unknown): void {
  if (isCompare(value)) return;
  throw invalidArgument(
    `txn().if takes compares built with Compare (e.g. Compare.modRevision(key, '==', 0)), got ${describeTxnArgument(value, 'Compare')}`,
  );
}

/** Refuses, before it is sent, an op Op did not build. */
function assertOp(value: unknown, branch: 'then' | 'else'): void {
  if (isOp(value)) return;
  throw invalidArgument(`txn().${branch} takes ops built with Op (e.g. Op.set(key, value)), got ${describeTxnArgument(value, 'Op')}`);
}

function toResult(op: ResponseOp): TxnOpResult {
  if (op.get) return { type: 'get', entry: op.get.entry === undefined ? undefined : toKvEntry(op.get.entry) };
  if (op.set) return { type: 'set', revision: op.set.revision };
  if (op.delete) return { type: 'delete', deleted: op.delete.deleted, revision: op.delete.revision };
  if (op.clear) return { type: 'clear', deletedCount: op.clear.deletedCount, revision: op.clear.revision };
  if (op.update?.entry) return { type: 'update', entry: toKvEntry(op.update.entry) };
  throw new KvError('server sent a transaction result of no known kind', status.INTERNAL, 'INTERNAL');
}
