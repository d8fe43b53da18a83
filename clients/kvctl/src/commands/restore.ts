import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { KvError } from '@kv/client';
import { asDamaged } from '../backup-errors';
import { CliError } from '../cli-error';
import { progressBar } from '../progress-bar';
import { loadServerRestore } from '../server-restore';
import type { Runner } from '../session';

export function restoreCommand(run: Runner): Command {
  return new Command('restore')
    .description(
      'build a new data directory DIR (empty or new) from the backup FILE, offline, revisions and leases kept; ' +
        'FILE is checked whole before anything is written. Then start kv-server --data-dir DIR on it',
    )
    .argument('<file>')
    .requiredOption('--data-dir <dir>', 'the data directory to create (it must be empty or not exist)')
    .action(
      run(async (session, file: string, options: { dataDir: string }) => {
        checkReadable(file);
        const { restoreDataDir, RestoreTargetError } = await loadServerRestore();
        const checking = progressBar(session.stderr, 'checking');
        const writing = progressBar(session.stderr, 'writing ');
        let summary;
        try {
          summary = await restoreDataDir(file, options.dataDir, {
            onProgress: (phase, progress) => {
              if (phase === 'writing') checking.stop();
              (phase === 'checking' ? checking : writing).update(progress);
            },
          });
        } catch (error) {
          if (error instanceof RestoreTargetError) throw new CliError(`${error.message}; nothing was restored`);
          const unwritable = targetProblem(error, options.dataDir);
          if (unwritable !== undefined) throw new CliError(`${unwritable}; nothing was restored`);
          // The file could not be opened after all (it changed since checkReadable): a bad file, not a server's answer.
          if (error instanceof KvError && error.reason === 'INVALID_ARGUMENT') throw new CliError(`${error.message}; nothing was restored`);
          throw asDamaged(error, 'nothing was restored');
        } finally {
          checking.stop();
          writing.stop();
        }
        const { revision, keyCount, leaseCount } = summary;
        session.printer.print({
          json: { dataDir: options.dataDir, revision, keys: keyCount, leases: leaseCount },
          table: [
            ['DATA_DIR', 'REVISION', 'KEYS', 'LEASES'],
            [options.dataDir, String(revision), String(keyCount), String(leaseCount)],
          ],
          value: String(revision),
        });
      }),
    );
}

/** A backup file that cannot be read is a usage error (exit 2) before anything else: restore is offline, no server said no. */
function checkReadable(file: string): void {
  let problem: string | undefined;
  try {
    const stats = statSync(file);
    if (stats.isDirectory()) problem = 'it is a directory, not a file';
    else if (!stats.isFile()) problem = 'it is not a regular file';
    else accessSync(file, constants.R_OK);
  } catch (error) {
    problem = (error as Error).message;
  }
  if (problem !== undefined) throw new CliError(`cannot read ${file}: ${problem}; nothing was restored`);
}

/**
 * Why DIR cannot be restored into, from a file system error while making or
 * writing it (a full disk; a path that cannot be made, such as under /proc;
 * no permission; a read-only file system), or undefined for any other error.
 * Either is a usage error (exit 2), as for a backup file that cannot be written.
 */
function targetProblem(error: unknown, dataDir: string): string | undefined {
  if (!(error instanceof Error) || typeof (error as NodeJS.ErrnoException).code !== 'string' || 'metadata' in error) return undefined;
  const { code, path: where } = error as NodeJS.ErrnoException;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return `--data-dir ${dataDir}: no space left on its disk (${code}); free some, or restore onto another disk`;
  }
  const dir = path.resolve(dataDir);
  if (where === undefined || !(path.resolve(where) === dir || path.resolve(where).startsWith(`${dir}${path.sep}`))) return undefined;
  return `--data-dir ${dataDir} cannot be used: ${error.message}`;
}
