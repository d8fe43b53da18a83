import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';
import { describeArgument, type OptionCheck } from './options-check';

/**
 * Refuses, before it is sent, a number the server takes as a whole number
 * (a revision, a time to live, a lease id, a page size): the encoder fails
 * on a fraction with an INTERNAL error, and past 2^53 a JavaScript number
 * is no longer the integer it was written as. `min` and `max` are the
 * field's range (default 0 to 2^53 - 1); the server judges its own limits.
 */
export function assertWholeNumber(value: unknown, what: string, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): void {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max) return;
  const got = typeof value === 'number' ? String(value) : describeArgument(value);
  throw new KvError(`${what} must be a whole number from ${min} to ${max}, got ${got}`, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
}

/** An option that is a whole number in `range`. */
export function wholeNumber(range: { min?: number; max?: number } = {}): OptionCheck {
  return (value, name) => assertWholeNumber(value, name, range);
}

/** An option that counts attempts: a whole number from `min`, or Infinity (no limit, as when it is left out). */
export function attemptCount(min: number): OptionCheck {
  return (value, name) => {
    if (value !== Number.POSITIVE_INFINITY) assertWholeNumber(value, name, { min });
  };
}

/**
 * What a time to live may be: 0 means "none" on the wire, so a key or lease
 * given it would never expire; at most a year, the server's limit.
 */
export const TIME_TO_LIVE = { min: 1, max: 365 * 24 * 60 * 60 * 1000 };

/** What a lease id may be (revoke, info, keep-alive): the server grants ids from 1; 0 is "no lease" only where a key is written. */
export const LEASE_ID = { min: 1 };

/** The range of an int32 field (a page size). */
export const INT32 = { max: 2 ** 31 - 1 };

/**
 * A span of time the SDK waits with a timer (a deadline, an idle timeout):
 * from 1 ms to the longest delay setTimeout takes (2^31 - 1 ms, about 24.8
 * days; Node fires a longer one after 1 ms).
 */
export const TIMER_MS = { min: 1, max: 2 ** 31 - 1 };

/** What a compare may ask of a revision, version or lease: any whole number ("> -1" included). */
export const ANY_WHOLE_NUMBER = { min: -Number.MAX_SAFE_INTEGER };
