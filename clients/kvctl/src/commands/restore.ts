import path from 'node:path';
import { Command } from 'commander';
import { KvError } from '@kv/client';
import { asDamaged } from '../backup-errors';
import { checkBackupFileArgument } from '../backup-file-argument';
import { CliError } from '../cli-error';
import { progressBar } from '../progress-bar';
import { loadServerRestore } from '../server-restore';
import type { Runner } from '../session';
import { Interrupted, StopOnSignal } from '../stop-on-signal';

const NOTHING_RESTORED = 'nothing was restored';

export function restoreCommand(run: Runner): Command {
  return (
    new Command('restore')
      .description(
        'build a new data directory DIR (empty or new) from the backup FILE, offline, revisions and leases kept; ' +
          'FILE is checked whole before anything is written (so it must be a regular file, not - or a pipe); stopped ' +
          '(Ctrl-C), it leaves DIR as it found it. Then start kv-server --data-dir DIR on it',
      )
      .argument('<file>', 'the backup file (a regular file: it is read twice)')
      // Not a requiredOption: commander would say only that, before the missing FILE.
      .option('--data-dir <dir>', 'the data directory to create (it must be empty or not exist; required)')
      .action(
        run(async (session, file: string, options: { dataDir?: string }) => {
          if (options.dataDir === undefined)
            throw new CliError(`required option '--data-dir <dir>' not specified: kvctl restore FILE --data-dir DIR`);
          checkBackupFileArgument(file, 'restore', NOTHING_RESTORED);
          // An unset shell variable (--data-dir "$DIR") would otherwise restore into the current directory.
          if (options.dataDir === '') throw new CliError(`--data-dir: the directory name is empty; ${NOTHING_RESTORED}`);
          const { restoreDataDir, RestoreTargetError } = await loadServerRestore();
          const checking = progressBar(session.stderr, 'checking');
          const writing = progressBar(session.stderr, 'writing ');
          // Listened for from the end of the check, which writes nothing and runs without a pause in which a listener
          // could run: Ctrl-C during it ends kvctl at once. Once writing, Ctrl-C or SIGTERM stops the restore at its
          // next block of keys, which removes what it wrote (DIR too, if it made it), and kvctl ends by the signal.
          let stop: StopOnSignal | undefined;
          let summary;
          try {
            summary = await restoreDataDir(file, options.dataDir, {
              onProgress: (phase, progress) => {
                if (phase === 'checking' && progress.keys === progress.keyCount) stop ??= new StopOnSignal();
                if (phase === 'writing') {
                  checking.stop();
                  stop ??= new StopOnSignal();
                  stop.check();
                }
                (phase === 'checking' ? checking : writing).update(progress);
              },
            });
            // A signal during the restore's last steps (the snapshot's fsync and rename) stopped nothing: DIR is complete.
            const late = await stop?.lastSignal();
            if (stop !== undefined && late !== undefined) {
              checking.stop();
              writing.stop();
              session.warn(
                `${new Interrupted(late).message} as the restore finished: ${options.dataDir} is complete (revision ${summary.revision})`,
              );
              return stop.dieOf(late);
            }
          } catch (error) {
            if (error instanceof Interrupted && stop !== undefined) {
              checking.stop();
              writing.stop();
              session.warn(`${error.message}; ${NOTHING_RESTORED}`);
              return stop.dieOf(error.signal);
            }
            if (error instanceof RestoreTargetError) throw new CliError(`${error.message}; ${NOTHING_RESTORED}`);
            const unwritable = targetProblem(error, options.dataDir);
            if (unwritable !== undefined) throw new CliError(`${unwritable}; ${NOTHING_RESTORED}`);
            // The file could not be opened after all (it changed since it was looked at): a bad file, not a server's answer.
            if (error instanceof KvError && error.reason === 'INVALID_ARGUMENT')
              throw new CliError(`${error.message}; ${NOTHING_RESTORED}`);
            throw asDamaged(error, NOTHING_RESTORED);
          } finally {
            stop?.close();
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
      )
  );
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
