import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';
import { isWellFormed } from './unicode-text';
import { DECODER_NESTING } from './wire/json-value';

const JSON_VALUES = 'JSON values are null, booleans, finite numbers, strings, arrays and plain objects';

/**
 * Refuses, before it is encoded, a value the SDK cannot send unchanged, in
 * one walk without recursion. A JSON value is null, a boolean, a finite
 * number, a string that is valid Unicode text, an array of JSON values, or
 * a plain object (its prototype Object.prototype or null) whose own
 * enumerable string-keyed properties are JSON values; a property that is
 * undefined is left out, as JSON.stringify does. Refused, as INVALID_VALUE:
 *
 * - anything else (a bigint, a function, a symbol, undefined elsewhere, NaN
 *   or an infinity, a Date, a Map, a class instance): the encoder would fail
 *   with an INTERNAL error, or quietly send {} for an object it cannot see
 *   into;
 * - a string or object key with a lone surrogate: UTF-8 cannot carry it,
 *   and the encoder would quietly write U+FFFD;
 * - nesting deeper than any protobuf decoder reads (100 messages: an array
 *   level is two, an object level three), a cycle included: the encoder
 *   recurses once per level, and would overflow the stack. (The server's
 *   own limit is lower, and its error names it.)
 */
export function assertJsonValue(value: unknown, what: string): void {
  const { budget, arrayLevel, objectLevel, tooDeep } = DECODER_NESTING;
  const pending: unknown[] = [value];
  const used: number[] = [1];
  while (pending.length > 0) {
    const item = pending.pop();
    const depth = used.pop() as number;
    if (typeof item === 'string') {
      if (!isWellFormed(item)) throw illFormed(what, 'a string', item, pathTo(value, item));
      continue;
    }
    if (item === null || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item))) continue;
    if (typeof item !== 'object' || !(Array.isArray(item) || isPlainObject(item))) {
      const at = pathTo(value, item);
      throw new KvError(
        `${what} is not JSON: ${describe(item)}${at === '' ? '' : ` at ${at}`} (${JSON_VALUES})`,
        status.INVALID_ARGUMENT,
        'INVALID_VALUE',
      );
    }
    const next = depth + (Array.isArray(item) ? arrayLevel : objectLevel);
    const push = (child: unknown): void => {
      if (typeof child === 'object' && child !== null && next > budget) {
        throw new KvError(`${what} is nested too deeply: ${tooDeep}`, status.INVALID_ARGUMENT, 'INVALID_VALUE');
      }
      pending.push(child);
      used.push(next);
    };
    if (Array.isArray(item)) {
      // for...of, not forEach: a hole is an item, undefined, and refused as one.
      for (const child of item as unknown[]) push(child);
      continue;
    }
    for (const key of Object.keys(item)) {
      if (!isWellFormed(key)) throw illFormed(what, 'an object key', key, pathTo(value, item));
      const child = (item as Record<string, unknown>)[key];
      if (child !== undefined) push(child);
    }
  }
}

function isPlainObject(item: object): boolean {
  const prototype = Object.getPrototypeOf(item) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function describe(item: unknown): string {
  if (item === undefined || typeof item === 'number') return String(item);
  if (typeof item !== 'object' || item === null) return `a ${typeof item}`;
  const name = (item.constructor as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string' || name === '') return 'an object with a prototype other than Object.prototype';
  return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}

function illFormed(what: string, where: string, text: string, at: string): KvError {
  // A value's string can be a megabyte: quote only a short one.
  const which = text.length <= 60 ? JSON.stringify(text) : `of ${text.length} characters`;
  return new KvError(
    `${what} has ${where} that is not valid Unicode text (it has a lone surrogate)${at === '' ? '' : ` at ${at}`}: ${which}`,
    status.INVALID_ARGUMENT,
    'INVALID_VALUE',
  );
}

/**
 * Where `target` is in `root`, as `.a[1]["b c"]` ('' for the root itself):
 * found by a second walk, made only for an error's message, so the walk
 * above keeps no paths.
 */
function pathTo(root: unknown, target: unknown): string {
  const pending: [unknown, string][] = [[root, '']];
  const seen = new Set<unknown>();
  while (pending.length > 0) {
    const [item, at] = pending.pop() as [unknown, string];
    if (Object.is(item, target)) return at;
    if (typeof item !== 'object' || item === null || seen.has(item)) continue;
    seen.add(item);
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([(item as unknown[])[i], `${at}[${i}]`]);
    } else if (isPlainObject(item)) {
      for (const key of Object.keys(item).reverse()) {
        const child = (item as Record<string, unknown>)[key];
        // Left out when sent, so not where the walk above stopped.
        if (child === undefined) continue;
        pending.push([child, /^[A-Za-z_$][\w$]*$/.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`]);
      }
    }
  }
  return '';
}
