/**
 * What a key (or a prefix, or a paging cursor) may be, in one place: keys
 * are non-empty, valid Unicode text (no lone surrogate), at most maxKeyBytes
 * in UTF-8. The public store methods check these before an engine sees a
 * key, so every engine rejects the same things with the same errors.
 */
import { InvalidKeyError, TooLargeError } from './errors';

/**
 * The UTF-8 size of `text`, or -1 if it has a lone surrogate (which UTF-8
 * cannot encode). Every read and write checks its key: isWellFormed is a
 * builtin, where the \p{Cs} regular expression this replaced cost a runtime
 * call per key.
 */
export function utf8Size(text: string): number {
  return text.isWellFormed() ? Buffer.byteLength(text, 'utf8') : -1;
}

/** Checks a key and returns its UTF-8 byte length. */
export function validateKey(key: string, maxKeyBytes: number): number {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidKeyError('key must be a non-empty string');
  }
  const size = utf8Size(key);
  if (size < 0) throw new InvalidKeyError(`key ${JSON.stringify(key)} is not valid Unicode text (it has a lone surrogate)`);
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
  if (!value.isWellFormed()) {
    throw new InvalidKeyError(`${option} ${JSON.stringify(value)} is not valid Unicode text (it has a lone surrogate)`);
  }
  return value;
}
