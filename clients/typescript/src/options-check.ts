import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';

/**
 * Checks one option's value (never undefined: an option given as undefined
 * is one left out) and throws a KvError naming it if it cannot be that.
 */
export type OptionCheck = (value: unknown, name: string) => void;

/**
 * Refuses, before anything is sent, an options object that is not one: a
 * string, a number, an array or null where it goes (plain JavaScript can
 * pass anything, and `kv.clear('tmp/')` would otherwise read no prefix and
 * clear every key), an option it does not have (a misspelt one would
 * otherwise be ignored: `{ expectedRevison }` makes a conditional write
 * unconditional), and an option of the wrong type. `owner` is the method,
 * `label` what the object is to it.
 */
export function assertOptions(
  options: unknown,
  owner: string,
  checks: Readonly<Record<string, OptionCheck>>,
  label = `${owner} options`,
): void {
  const names = Object.keys(checks);
  if (!isObject(options)) throw invalidArgument(`${label} must be an object (${names.join(', ')}), got ${describeArgument(options)}`);
  for (const name of Object.keys(options)) {
    if (!Object.hasOwn(checks, name)) {
      throw invalidArgument(`${owner} has no option ${JSON.stringify(name)} (its options: ${names.join(', ')})`);
    }
  }
  for (const name of names) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined) checks[name](value, name);
  }
}

/** An object, not null and not an array (what an options object must be). */
export function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const isBoolean: OptionCheck = (value, name) => {
  if (typeof value !== 'boolean') throw invalidArgument(`${name} must be true or false, got ${describeArgument(value)}`);
};

export const isFunction: OptionCheck = (value, name) => {
  if (typeof value !== 'function') throw invalidArgument(`${name} must be a function, got ${describeArgument(value)}`);
};

export const isString: OptionCheck = (value, name) => {
  if (typeof value !== 'string') throw invalidArgument(`${name} must be a string, got ${describeArgument(value)}`);
};

export const isAbortSignal: OptionCheck = (value, name) => {
  if (!(value instanceof AbortSignal)) throw invalidArgument(`${name} must be an AbortSignal, got ${describeArgument(value)}`);
};

/** Any object (grpc-js's channel options, say), checked no further. */
export const isAnyObject: OptionCheck = (value, name) => {
  if (!isObject(value)) throw invalidArgument(`${name} must be an object, got ${describeArgument(value)}`);
};

/** What was given instead, for a message: `a string ("tmp/")`, `a number (5)`, `an array`, `null`. */
export function describeArgument(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  // A string can be a megabyte: quote only a short one.
  if (typeof value === 'string')
    return value.length <= 60 ? `a string (${JSON.stringify(value)})` : `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `a ${typeof value} (${String(value)})`;
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`;
}

export function invalidArgument(message: string): KvError {
  return new KvError(message, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
}
