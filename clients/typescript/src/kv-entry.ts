import type { Entry } from './gen/kv/v1/kv';

/** Any JSON value: what kv stores under a key. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * T, checked as JSON: strings, numbers, booleans, null, arrays and objects
 * of those. Unlike JsonValue it accepts interfaces (which have no index
 * signature), so `set<User>('u', user)` compiles for `interface User {...}`;
 * functions, dates, bigints and symbols are refused at compile time.
 */
export type JsonCompatible<T> = T extends string | number | boolean | null
  ? T
  : T extends readonly (infer U)[]
    ? readonly JsonCompatible<U>[]
    : T extends (...args: never[]) => unknown
      ? never
      : T extends object
        ? { [K in keyof T]: JsonCompatible<T[K]> }
        : never;

export interface KvEntry<T = JsonValue> {
  key: string;
  value: T;
  /** The revision that created the key (since it last did not exist). */
  createRevision: number;
  /** The revision of the key's last change: pass it as expectedRevision for a compare-and-set. */
  modRevision: number;
  /** Writes since the key was created; 1 on create. */
  version: number;
  /** The lease the key is attached to; 0 if none. */
  lease: number;
}

export function toKvEntry<T>(entry: Entry): KvEntry<T> {
  return {
    key: entry.key,
    value: entry.value as T,
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
    lease: entry.lease,
  };
}
