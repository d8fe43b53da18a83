import { Option } from 'commander';
import { CliError } from '../cli-error';

/** --expected-revision for set and del: write only if the key's mod_revision is exactly N (0: only if absent). */
export const expectedRevisionOption = new Option(
  '--expected-revision <n>',
  "write only if the key's mod_revision is N (0: only if the key does not exist); exit 3 if not",
);

export function parseExpectedRevision(raw: string | undefined): number | undefined {
  return parseWholeNumber(raw, '--expected-revision');
}

/** A flag's or argument's whole number (>= 0), or undefined if it was not given. */
export function parseWholeNumber(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new CliError(`${what}: "${raw}" is not a whole number (>= 0)`);
  return Number(raw);
}
