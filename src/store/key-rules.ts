/**
 * What a key (or a prefix, or a paging cursor) may be, in one place: keys
 * are non-empty, valid Unicode text (no lone surrogate), at most maxKeyBytes
 * in UTF-8. The public store methods check these before an engine sees a
 * key, so every engine rejects the same things with the same errors.
 */
import { InvalidKeyError, TooLargeError } from './errors';

/**
 * The UTF-8 size of `text`, or -1 if it has a lone surrogate (which UTF-8
 * cannot encode). One pass in JS: every read and write checks its key, and
 * a regular expression and a native size call cost several times this.
 */
export function utf8Size(text: string): number {
  const n = text.length;
  let size = n;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      size += 1;
    } else if (c < 0xd800 || c > 0xdfff) {
      size += 2;
    } else {
      // A high surrogate followed by a low one is one code point: 4 bytes for 2 units.
      const d = c <= 0xdbff && i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) return -1;
      size += 2;
      i++;
    }
  }
  return size;
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
  if (utf8Size(value) < 0) {
    throw new InvalidKeyError(`${option} ${JSON.stringify(value)} is not valid Unicode text (it has a lone surrogate)`);
  }
  return value;
}
