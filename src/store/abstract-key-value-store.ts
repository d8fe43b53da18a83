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
import { InvalidArgumentError, StoreClosedError } from './errors';
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
} from './key-value-store';
import { validateKey, validatePrefix } from './key-rules';
import { encodeValue } from './value-rules';

export interface StoreLimits {
  /** The longest key, in UTF-8 bytes. */
  maxKeyBytes: number;
  /** The largest value, in bytes of its JSON encoding. */
  maxValueBytes: number;
}

/** A set that passed validation: the value is already JSON text. */
export interface ValidSet {
  key: string;
  keyBytes: number;
  valueJson: string;
  valueBytes: number;
  expectedRevision: number | undefined;
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

export abstract class AbstractKeyValueStore implements KeyValueStore {
  private state: StoreState = 'open';
  private closing: Promise<void> | undefined;

  protected constructor(protected readonly limits: StoreLimits) {}

  abstract get revision(): number;

  get status(): StoreState {
    return this.state;
  }

  get(key: string): Promise<Entry | undefined> {
    return this.guard(() => {
      validateKey(key, this.limits.maxKeyBytes);
      return this._get(key);
    });
  }

  set(key: string, value: JsonValue, options?: WriteOptions): Promise<SetResult> {
    return this.guard(() => {
      const keyBytes = validateKey(key, this.limits.maxKeyBytes);
      const { json, size } = encodeValue(key, value, this.limits.maxValueBytes);
      return this._set({ key, keyBytes, valueJson: json, valueBytes: size, expectedRevision: expectedRevision(options) });
    });
  }

  delete(key: string, options?: WriteOptions): Promise<DeleteResult> {
    return this.guard(() => {
      const keyBytes = validateKey(key, this.limits.maxKeyBytes);
      return this._delete({ key, keyBytes, expectedRevision: expectedRevision(options) });
    });
  }

  listKeys(options: ListOptions = {}): Promise<ListResult> {
    return this.guard(() => {
      const prefix = validatePrefix(options.prefix, 'listKeys option prefix');
      const startAfter = options.startAfter === undefined ? undefined : validatePrefix(options.startAfter, 'listKeys option startAfter');
      const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(options.limit));
      return this._listKeys({ prefix, startAfter, limit });
    });
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
  /** Finishes accepted work and releases resources; called once. */
  protected abstract _close(): Promise<void>;

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
