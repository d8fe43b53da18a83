/**
 * Input checks shared by every engine: the public store methods call these
 * before an engine sees a key or value, so all engines reject the same things
 * with the same errors.
 */
import { InvalidKeyError, InvalidValueError, TooLargeError } from './errors';
import type { JsonValue } from './key-value-store';

// With the u flag a surrogate pair is one code point, so this only matches lone halves.
const loneSurrogate = /\p{Cs}/u;

/** Checks a key and returns its UTF-8 byte length. */
export function validateKey(key: string, maxKeyBytes: number): number {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidKeyError('key must be a non-empty string');
  }
  if (loneSurrogate.test(key)) {
    throw new InvalidKeyError(`key ${JSON.stringify(key)} is not valid Unicode text (it has a lone surrogate)`);
  }
  const size = Buffer.byteLength(key, 'utf8');
  if (size > maxKeyBytes) throw new TooLargeError('key', size, maxKeyBytes, key);
  return size;
}

/**
 * Checks a prefix or paging cursor: empty is fine (everything), a lone
 * surrogate is not. `option` names it as a store user passes it, e.g.
 * "listKeys option startAfter", so the message points at the argument to fix.
 */
export function validatePrefix(value: string | undefined, option: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new InvalidKeyError(`${option} must be a string, got ${typeof value}`);
  if (loneSurrogate.test(value)) {
    throw new InvalidKeyError(`${option} ${JSON.stringify(value)} is not valid Unicode text (it has a lone surrogate)`);
  }
  return value;
}

/**
 * JSON-encodes a value. JSON.stringify alone would quietly turn NaN into null
 * and drop undefined object members, so the value is walked first.
 */
export function encodeValue(key: string, value: JsonValue, maxValueBytes: number): { json: string; size: number } {
  const problem = findNonJson(value, 0);
  if (problem !== undefined) {
    throw new InvalidValueError(`value for key ${JSON.stringify(key)} is not JSON: ${problem}`);
  }
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new InvalidValueError(`value for key ${JSON.stringify(key)} is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const size = Buffer.byteLength(json, 'utf8');
  if (size > maxValueBytes) throw new TooLargeError('value', size, maxValueBytes, key);
  return { json, size };
}

const maxDepth = 1000;

function findNonJson(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${value} is not a JSON number`;
    case 'object': {
      if (value === null) return undefined;
      if (depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
      if (Array.isArray(value)) {
        for (const item of value) {
          const p = findNonJson(item, depth + 1);
          if (p !== undefined) return p;
        }
        return undefined;
      }
      for (const k of Object.keys(value)) {
        const p = findNonJson((value as Record<string, unknown>)[k], depth + 1);
        if (p !== undefined) return `member ${JSON.stringify(k)}: ${p}`;
      }
      return undefined;
    }
    default:
      return `${typeof value} is not a JSON value`;
  }
}
