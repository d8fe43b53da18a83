import { accessSync, constants, statSync } from 'node:fs';
import { CliError } from './cli-error';

/**
 * The FILE of import and restore, which read it twice (check it whole, then
 * write it): a regular file kvctl may read, so never - (stdin) or a pipe.
 * Anything else is a usage error (exit 2) in one line, before anything else
 * is done; `consequence` says so ("nothing was imported").
 */
export function checkBackupFileArgument(file: string, command: 'import' | 'restore', consequence: string): void {
  const readTwice = `${command} reads FILE twice (to check it, then to write it), so it needs a regular file: save the backup to a file first (gunzip a .gz first)`;
  let problem: string | undefined;
  if (file === '-') problem = `standard input cannot be read twice; ${readTwice}`;
  else {
    try {
      const stats = statSync(file);
      if (stats.isDirectory()) problem = 'it is a directory, not a file';
      else if (!stats.isFile()) problem = `it is not a regular file; ${readTwice}`;
      else accessSync(file, constants.R_OK);
    } catch (error) {
      problem = (error as Error).message;
    }
  }
  if (problem !== undefined) throw new CliError(`cannot read ${file}: ${problem}; ${consequence}`);
}
