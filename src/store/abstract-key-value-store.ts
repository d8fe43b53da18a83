/**
 * The public face every engine shares (the abstract-level split): get, set,
 * delete, listKeys, clear and close check the store's state and validate and
 * encode their input here, then call the engine's protected _get, _set...
 * with input it can trust. So every engine rejects the same things with the
 * same errors, and an engine only implements storage.
 *
 * States: open → closing (close() called: new calls fail with
 * StoreClosedError; the engine finishes what it accepted) → closed.
 * Every public method reports failure by rejecting, never by throwing.
 */
import { InvalidArgumentError, InvalidKeyError, InvalidValueError, StoreClosedError } from './errors';
import type {
  ClearResult,
  DeleteResult,
  Entry,
  JsonValue,
  KeyValueStore,
  ListOptions,
  ListResult,
  SetResult,
  Watch,
  WatchOptions,
  WriteOptions,
  Compare,
  Lease,
  LeaseInfo,
  ListLeasesResult,
  ListEntriesResult,
  SetOptions,
  StoreSnapshot,
  StoreStats,
  TxnOp,
  TxnRequest,
  TxnResult,
  UpdateOptions,
  CallDeadline,
} from './key-value-store';
import { validateKey, validatePrefix } from './key-rules';
import { type JsonText, encodeValue } from './value-rules';

export interface StoreLimits {
  /** The longest key, in UTF-8 bytes. */
  maxKeyBytes: number;
  /** The largest value, in bytes of its JSON encoding. */
  maxValueBytes: number;
  /** The most compares, and the most ops in each branch, of a transaction. */
  maxTxnOps: number;
}

export const DEFAULT_MAX_TXN_OPS = 128;
/** The longest time to live a lease may have: a year. */
export const MAX_LEASE_TTL_MS = 365 * 24 * 60 * 60 * 1000;

/** A set that passed validation: the value is already JSON text. */
export interface ValidSet {
  key: string;
  keyBytes: number;
  valueJson: string;
  valueBytes: number;
  expectedRevision: number | undefined;
  /** The lease to attach to; 0 for none. */
  lease: number;
  /** A private lease of this many ms; undefined for none. */
  ttlMs: number | undefined;
}

export interface ValidUpdate {
  key: string;
  keyBytes: number;
  /** A JSON value (checked); the merged result is checked against the value rules when decided. */
  patch: JsonValue;
  expectedRevision: number | undefined;
  createIfMissing: boolean;
  /** See CallDeadline. */
  deadline?: number;
}

export type ValidTxnOp =
  | { type: 'get'; key: string }
  | ({ type: 'set' } & Omit<ValidSet, 'expectedRevision'>)
  | { type: 'delete'; key: string; keyBytes: number }
  | { type: 'clear'; prefix: string; prefixBytes: number }
  | ({ type: 'update' } & Omit<ValidUpdate, 'expectedRevision'>);

export interface ValidTxn {
  compare: Compare[];
  success: ValidTxnOp[];
  failure: ValidTxnOp[];
  /** See CallDeadline. */
  deadline?: number;
}

export interface ValidDelete {
  key: string;
  keyBytes: number;
  expectedRevision: number | undefined;
}

export interface ValidList {
  /** '' = every key. */
  prefix: string;
  startAfter: string | undefined;
  /** A whole number ≥ 0, or Infinity for no limit. */
  limit: number;
}

export interface ValidClear {
  /** '' = every key. */
  prefix: string;
  prefixBytes: number;
}

export interface ValidWatch {
  target: { key: string } | { prefix: string };
  /** 0: from the next revision. */
  startRevision: number;
  prevEntry: boolean;
}

export type StoreState = 'open' | 'closing' | 'closed';

/**
 * A call that passed validation here, as one value: a worker process's store
 * (store/remote) validates and encodes a call once, then forwards it to the
 * store owner, which runs it with runValid() without checking it again (both
 * sides run with the same limits).
 */
export type ValidCall =
  | { method: 'set'; op: ValidSet }
  | { method: 'delete'; op: ValidDelete }
  | { method: 'update'; op: ValidUpdate }
  | { method: 'txn'; op: ValidTxn }
  | { method: 'clear'; op: ValidClear }
  | { method: 'grantLease'; ttlMs: number }
  | { method: 'keepAliveLease'; id: number }
  | { method: 'revokeLease'; id: number }
  | { method: 'leaseInfo'; id: number; keys: boolean }
  | { method: 'listLeases'; after: number; limit: number };

export abstract class AbstractKeyValueStore implements KeyValueStore {
  private state: StoreState = 'open';
  private closing: Promise<void> | undefined;

  protected constructor(protected readonly limits: StoreLimits) {}

  abstract get revision(): number;
  abstract get watchProgressMs(): number | undefined;
  abstract readonly historyId: string | undefined;

  get status(): StoreState {
    return this.state;
  }

  get(key: string): Promise<Entry | undefined> {
    return this.guard(() => {
      validateKey(key, this.limits.maxKeyBytes);
      return this._get(key);
    });
  }

  set(key: string, value: JsonValue | JsonText, options?: SetOptions): Promise<SetResult> {
    return this.guard(() => this._set(this.validSet(key, value, options, expectedRevision(options))));
  }

  update(key: string, patch: JsonValue, options?: UpdateOptions): Promise<Entry> {
    return this.guard(() =>
      this._update({ ...this.validUpdate(key, patch, options), expectedRevision: expectedRevision(options), deadline: options?.deadline }),
    );
  }

  txn(request: TxnRequest, options?: CallDeadline): Promise<TxnResult> {
    return this.guard(() => this._txn({ ...this.validTxn(request), deadline: options?.deadline }));
  }

  grantLease(ttlMs: number): Promise<Lease> {
    return this.guard(() => this._grantLease(validTtl(ttlMs, 'lease ttl_ms')));
  }

  keepAliveLease(id: number): Promise<Lease> {
    return this.guard(() => this._keepAliveLease(validLeaseId(id)));
  }

  revokeLease(id: number): Promise<ClearResult> {
    return this.guard(() => this._revokeLease(validLeaseId(id)));
  }

  leaseInfo(id: number, options: { keys?: boolean } = {}): Promise<LeaseInfo> {
    return this.guard(() => this._leaseInfo(validLeaseId(id), options.keys === true));
  }

  listLeases(options: { after?: number; limit?: number } = {}): Promise<ListLeasesResult> {
    return this.guard(() => {
      const after = options.after ?? 0;
      if (!Number.isSafeInteger(after) || after < 0)
        throw new InvalidArgumentError(`listLeases option after must be a lease id or 0 (got ${after})`);
      const limit = options.limit === undefined ? Number.MAX_SAFE_INTEGER : Math.max(0, Math.floor(options.limit));
      return this._listLeases(after, limit);
    });
  }

  delete(key: string, options?: WriteOptions): Promise<DeleteResult> {
    return this.guard(() => {
      const keyBytes = validateKey(key, this.limits.maxKeyBytes);
      return this._delete({ key, keyBytes, expectedRevision: expectedRevision(options) });
    });
  }

  listKeys(options: ListOptions = {}): Promise<ListResult> {
    return this.guard(() => this._listKeys(validList(options, 'listKeys')));
  }

  list(options: ListOptions = {}): Promise<ListEntriesResult> {
    return this.guard(() => this._list(validList(options, 'list')));
  }

  clear(options: { prefix?: string } = {}): Promise<ClearResult> {
    return this.guard(() => {
      const prefix = validatePrefix(options.prefix, 'clear option prefix');
      return this._clear({ prefix, prefixBytes: Buffer.byteLength(prefix, 'utf8') });
    });
  }

  /** A watch on a closed store ends at once: its first next() rejects with StoreClosedError. */
  watch(options: WatchOptions): Watch {
    if (this.state !== 'open') return endedWatch(new StoreClosedError(`the store is ${this.state}`));
    try {
      return this._watch(validateWatch(options, this.limits.maxKeyBytes));
    } catch (err) {
      return endedWatch(err);
    }
  }

  snapshot(): Promise<StoreSnapshot> {
    return this.guard(() => this._snapshot());
  }

  /** Runs a call another store validated (see ValidCall); resolves with what the public method would. */
  runValid(call: ValidCall): Promise<unknown> {
    return this.guard((): Promise<unknown> => {
      switch (call.method) {
        case 'set':
          return this._set(call.op);
        case 'delete':
          return this._delete(call.op);
        case 'update':
          return this._update(call.op);
        case 'txn':
          return this._txn(call.op);
        case 'clear':
          return this._clear(call.op);
        case 'grantLease':
          return this._grantLease(call.ttlMs);
        case 'keepAliveLease':
          return this._keepAliveLease(call.id);
        case 'revokeLease':
          return this._revokeLease(call.id);
        case 'leaseInfo':
          return this._leaseInfo(call.id, call.keys);
        case 'listLeases':
          return this._listLeases(call.after, call.limit);
      }
    });
  }

  abstract stats(): StoreStats;

  /** Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.state = 'closing';
      this.closing = this.guardAlways(() => this._close()).finally(() => {
        this.state = 'closed';
      });
    }
    return this.closing;
  }

  protected abstract _get(key: string): Promise<Entry | undefined>;
  protected abstract _set(op: ValidSet): Promise<SetResult>;
  protected abstract _delete(op: ValidDelete): Promise<DeleteResult>;
  protected abstract _listKeys(op: ValidList): Promise<ListResult>;
  protected abstract _clear(op: ValidClear): Promise<ClearResult>;
  protected abstract _watch(op: ValidWatch): Watch;
  protected abstract _list(op: ValidList): Promise<ListEntriesResult>;
  protected abstract _update(op: ValidUpdate): Promise<Entry>;
  protected abstract _txn(op: ValidTxn): Promise<TxnResult>;
  protected abstract _grantLease(ttlMs: number): Promise<Lease>;
  protected abstract _keepAliveLease(id: number): Promise<Lease>;
  protected abstract _revokeLease(id: number): Promise<ClearResult>;
  protected abstract _leaseInfo(id: number, keys: boolean): Promise<LeaseInfo>;
  protected abstract _listLeases(after: number, limit: number): Promise<ListLeasesResult>;
  protected abstract _snapshot(): Promise<StoreSnapshot>;
  /** Finishes accepted work and releases resources; called once. */
  protected abstract _close(): Promise<void>;

  /** `expectedRevision` is undefined for a transaction's set (its compares say what must hold). */
  private validSet(
    key: string,
    value: JsonValue | JsonText,
    options: SetOptions | undefined,
    expectedRevision: number | undefined,
  ): ValidSet {
    const keyBytes = validateKey(key, this.limits.maxKeyBytes);
    const { json, size } = encodeValue(key, value, this.limits.maxValueBytes);
    const lease = options?.lease ?? 0;
    const ttlMs = options?.ttlMs ?? undefined;
    if (lease !== 0) validLeaseId(lease);
    if (ttlMs !== undefined) validTtl(ttlMs, `ttl_ms for key ${JSON.stringify(key)}`);
    if (lease !== 0 && ttlMs !== undefined) {
      throw new InvalidArgumentError(`key ${JSON.stringify(key)}: give a lease or a ttl_ms, not both`);
    }
    return { key, keyBytes, valueJson: json, valueBytes: size, expectedRevision, lease, ttlMs };
  }

  private validUpdate(key: string, patch: JsonValue, options: UpdateOptions | undefined): Omit<ValidUpdate, 'expectedRevision'> {
    const keyBytes = validateKey(key, this.limits.maxKeyBytes);
    if (patch === undefined) throw new InvalidArgumentError(`patch is required for key ${JSON.stringify(key)} (JSON null is a patch)`);
    // Checked as JSON and bounded like a value; the merged result is checked when decided.
    encodeValue(key, patch, this.limits.maxValueBytes, 'patch');
    return { key, keyBytes, patch, createIfMissing: options?.createIfMissing === true };
  }

  private validTxn(request: TxnRequest): ValidTxn {
    const max = this.limits.maxTxnOps;
    const compare = request.compare ?? [];
    const success = request.success ?? [];
    const failure = request.failure ?? [];
    for (const [name, list] of [
      ['compares', compare],
      ['success ops', success],
      ['failure ops', failure],
    ] as const) {
      if (list.length > max) throw new InvalidArgumentError(`a transaction has at most ${max} ${name}; this one has ${list.length}`);
    }
    compare.forEach((c, i) => locatingErrors(`compare ${i} on key ${JSON.stringify(c.key)}`, () => this.checkCompare(c)));
    return { compare, success: this.validOps(success, 'success'), failure: this.validOps(failure, 'failure') };
  }

  private checkCompare(c: Compare): void {
    validateKey(c.key, this.limits.maxKeyBytes);
    if (!['equal', 'not_equal', 'less', 'greater'].includes(c.result)) {
      throw new InvalidArgumentError('result must be EQUAL, NOT_EQUAL, LESS or GREATER');
    }
    if (c.target === 'value') {
      encodeValue(c.key, c.value, this.limits.maxValueBytes);
      if ((c.result === 'less' || c.result === 'greater') && typeof c.value !== 'number' && typeof c.value !== 'string') {
        throw new InvalidArgumentError(`LESS and GREATER compare numbers or strings, not ${jsonKind(c.value)}`);
      }
    } else if (!Number.isSafeInteger(c.number) || c.number < 0) {
      // Named as the request names it (Compare's fields), as other messages name theirs.
      const field = c.target === 'createRevision' ? 'create_revision' : c.target === 'modRevision' ? 'mod_revision' : c.target;
      throw new InvalidArgumentError(`${field} must be a whole number >= 0 (got ${c.number})`);
    }
  }

  private validOps(ops: TxnOp[], branch: string): ValidTxnOp[] {
    const valid = ops.map((op, i) => locatingErrors(`${branch} op ${i}`, () => this.validOp(op)));
    checkNoOverlap(valid, branch);
    return valid;
  }

  private validOp(op: TxnOp): ValidTxnOp {
    switch (op.type) {
      case 'get':
        validateKey(op.key, this.limits.maxKeyBytes);
        return op;
      case 'set':
        return { type: 'set', ...this.validSet(op.key, op.value, op, undefined) };
      case 'delete':
        return { type: 'delete', key: op.key, keyBytes: validateKey(op.key, this.limits.maxKeyBytes) };
      case 'clear': {
        const prefix = validatePrefix(op.prefix, 'clear prefix');
        return { type: 'clear', prefix, prefixBytes: Buffer.byteLength(prefix, 'utf8') };
      }
      case 'update':
        return { type: 'update', ...this.validUpdate(op.key, op.patch, op) };
      default:
        throw new InvalidArgumentError(`unknown transaction op ${JSON.stringify((op as { type: unknown }).type)}`);
    }
  }

  /** Runs `call` if the store is open; turns a synchronous throw into a rejection. */
  private guard<T>(call: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') return Promise.reject(new StoreClosedError(`the store is ${this.state}`));
    return this.guardAlways(call);
  }

  private guardAlways<T>(call: () => Promise<T>): Promise<T> {
    try {
      return call();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/**
 * Runs a transaction part's checks; a key, value or argument refused there
 * says which part it is (an empty key has no name to find it by among 128
 * ops, and one key may be written by several).
 */
function locatingErrors<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    for (const Refusal of [InvalidKeyError, InvalidArgumentError, InvalidValueError]) {
      if (error instanceof Refusal) throw new Refusal(`${where}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function validList(options: ListOptions, method: string): ValidList {
  const prefix = validatePrefix(options.prefix, `${method} option prefix`);
  const startAfter = options.startAfter === undefined ? undefined : validatePrefix(options.startAfter, `${method} option startAfter`);
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(options.limit));
  return { prefix, startAfter, limit };
}

function validTtl(ttlMs: number, what: string): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LEASE_TTL_MS) {
    throw new InvalidArgumentError(`${what} must be a whole number of milliseconds from 1 to ${MAX_LEASE_TTL_MS} (a year); got ${ttlMs}`);
  }
  return ttlMs;
}

function validLeaseId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`a lease id is a whole number >= 1 (got ${id})`);
  return id;
}

function jsonKind(value: JsonValue): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** As etcd: within one branch of a transaction no key may be written twice (sets, deletes, updates and clears overlapping). */
function checkNoOverlap(ops: ValidTxnOp[], branch: string): void {
  const written = new Set<string>();
  const prefixes: string[] = [];
  for (const op of ops) {
    if (op.type === 'get') continue;
    if (op.type === 'clear') {
      const other = prefixes.find((p) => p.startsWith(op.prefix) || op.prefix.startsWith(p));
      if (other !== undefined) {
        throw new InvalidArgumentError(
          `the ${branch} ops clear overlapping prefixes ${JSON.stringify(other)} and ${JSON.stringify(op.prefix)}`,
        );
      }
      prefixes.push(op.prefix);
      continue;
    }
    if (written.has(op.key)) throw new InvalidArgumentError(`the ${branch} ops write key ${JSON.stringify(op.key)} more than once`);
    written.add(op.key);
  }
  for (const prefix of prefixes) {
    for (const key of written) {
      if (key.startsWith(prefix)) {
        throw new InvalidArgumentError(
          `the ${branch} ops write key ${JSON.stringify(key)} and also clear it (prefix ${JSON.stringify(prefix)})`,
        );
      }
    }
  }
}

function expectedRevision(options: WriteOptions | undefined): number | undefined {
  const expected = options?.expectedRevision;
  return expected === undefined || expected === null ? undefined : expected;
}

function validateWatch(options: WatchOptions, maxKeyBytes: number): ValidWatch {
  const { key, prefix } = options;
  if ((key === undefined) === (prefix === undefined)) throw new InvalidArgumentError('watch needs exactly one of a key and a prefix');
  if (key !== undefined) validateKey(key, maxKeyBytes);
  const target = key !== undefined ? { key } : { prefix: validatePrefix(prefix, 'watch option prefix') };
  const startRevision = options.startRevision ?? 0;
  if (!Number.isSafeInteger(startRevision) || startRevision < 0) {
    throw new InvalidArgumentError(`start_revision must be a whole number >= 0 (got ${startRevision})`);
  }
  return { target, startRevision, prevEntry: options.prevEntry === true };
}

/** A watch that already ended: every next() rejects with `error`. */
function endedWatch(error: unknown): Watch {
  return { next: () => Promise.reject(error), close: () => undefined };
}
