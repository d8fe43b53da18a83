/**
 * RFC 7396 JSON merge patch: an object patch merges member by member (null
 * deletes a member, an object merges recursively), anything else replaces.
 * Pure: neither argument is changed.
 *
 * Ours rather than the npm json-merge-patch package, which stops applying a
 * patch at a member named "__proto__", "constructor" or "prototype" and
 * returns what it has so far: the rest of the patch would be silently
 * dropped, and "constructor" is an ordinary JSON key. Here every member is
 * an own property, whatever its name.
 */
import type { JsonValue } from './key-value-store';

type JsonObject = { [key: string]: JsonValue };

export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  const result: JsonObject = {};
  if (isObject(target)) for (const key of Object.keys(target)) setOwn(result, key, target[key]);
  for (const key of Object.keys(patch)) {
    const member = patch[key];
    if (member === null) {
      delete result[key];
    } else {
      setOwn(result, key, applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, member));
    }
  }
  return result;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setOwn(object: JsonObject, key: string, value: JsonValue): void {
  // Assigning "__proto__" would set the prototype instead of a member.
  if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}
