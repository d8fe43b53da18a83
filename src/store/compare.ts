/**
 * Transaction compares, decided the same way by every engine: on a key's
 * stored state (a missing key: revisions 0, lease 0, no value), values by
 * JSON equality and by number or code point order.
 */
import type { StoredEntry } from './change';
import type { Compare, JsonValue } from './key-value-store';

/** Whether a compare holds for the key's entry (undefined: a missing key). */
export function holds(c: Compare, entry: StoredEntry | undefined): boolean {
  if (c.target === 'value') {
    // A missing key has no value: every value compare on it is false (as in etcd).
    if (entry === undefined) return false;
    const value = JSON.parse(entry.valueJson) as JsonValue;
    if (c.result === 'equal') return jsonEqual(value, c.value);
    if (c.result === 'not_equal') return !jsonEqual(value, c.value);
    const order = compareOrdered(value, c.value);
    return order !== undefined && (c.result === 'less' ? order < 0 : order > 0);
  }
  const actual =
    entry === undefined
      ? 0
      : c.target === 'version'
        ? entry.version
        : c.target === 'createRevision'
          ? entry.createRevision
          : c.target === 'modRevision'
            ? entry.modRevision
            : entry.lease;
  switch (c.result) {
    case 'equal':
      return actual === c.number;
    case 'not_equal':
      return actual !== c.number;
    case 'less':
      return actual < c.number;
    case 'greater':
      return actual > c.number;
  }
}

/** JSON equality: object member order does not matter; numbers compare as numbers. */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

/** Numbers as numbers, strings in code point order; undefined if the two do not compare. */
function compareOrdered(a: JsonValue, b: JsonValue): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return undefined;
}
