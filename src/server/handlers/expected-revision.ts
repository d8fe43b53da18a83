import { InvalidArgumentError } from '../service-errors';

/** Revisions start at 1 and 0 means "must not exist", so a negative one is a mistake, not a mismatch. */
export function checkExpectedRevision(expectedRevision: number | undefined): void {
  if (expectedRevision !== undefined && expectedRevision < 0) {
    throw new InvalidArgumentError(`expected_revision must not be negative (got ${expectedRevision})`);
  }
}
