import { Option } from 'commander';
import { CliError } from '../cli-error';

/** --expected-revision for set and del: write only if the key's mod_revision is exactly N (0: only if absent). */
export const expectedRevisionOption = new Option(
  '--expected-revision <n>',
  "write only if the key's mod_revision is N (0: only if the key does not exist); exit 3 if not",
);

/** del's: a delete of a key that does not exist deletes nothing, so 0 ("only if absent") is refused. */
export const deleteExpectedRevisionOption = new Option(
  '--expected-revision <n>',
  "delete only if the key's mod_revision is N (>= 1); exit 3 if not",
);

export function parseDeleteExpectedRevision(raw: string | undefined): number | undefined {
  return parsePositiveNumber(
    raw,
    '--expected-revision',
    '0 would mean only if the key does not exist, and then there is nothing to delete',
  );
}

export function parseExpectedRevision(raw: string | undefined): number | undefined {
  return parseWholeNumber(raw, '--expected-revision');
}

/** A flag's or argument's whole number (>= 0), or undefined if it was not given. */
export function parseWholeNumber(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new CliError(`${what}: "${raw}" is not a whole number (>= 0)`);
  tooLarge(raw, what);
  return Number(raw);
}

/**
 * A flag's or argument's whole number >= 1, or undefined if it was not
 * given: for a number whose 0 would not mean what it says (on the wire, 0 is
 * "not set"), so 0 is refused rather than quietly ignored. `why` says so.
 */
export function parsePositiveNumber(raw: string | undefined, what: string, why?: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isNaN(n)) tooLarge(raw, what);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new CliError(`${what}: "${raw}" is not a whole number >= 1${why === undefined ? '' : ` (${why})`}`);
  return n;
}

/** Digits past Number.MAX_SAFE_INTEGER (2^53-1), which the SDK (and a JSON number) cannot carry exactly: a usage error saying so. */
function tooLarge(digits: string, what: string): void {
  if (!Number.isSafeInteger(Number(digits))) {
    throw new CliError(`${what}: "${digits}" is too large (at most 2^53-1 = ${Number.MAX_SAFE_INTEGER})`);
  }
}
