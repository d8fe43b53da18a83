import { KvError } from '@kv/client';
import { CliError } from './cli-error';
import { EXIT } from './exit-codes';

/** A backup file (or stream) that is not one, is incomplete or fails its checksum exits 9; anything else goes on as it is. */
export function asDamaged(error: unknown, consequence: string): unknown {
  return error instanceof KvError && error.reason === 'CORRUPT' ? new CliError(`${error.message}; ${consequence}`, EXIT.damaged) : error;
}
