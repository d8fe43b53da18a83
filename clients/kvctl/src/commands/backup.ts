import { Command } from 'commander';
import { asDamaged } from '../backup-errors';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import { Printer } from '../output';
import { progressBar } from '../progress-bar';
import type { Runner } from '../session';
import { Interrupted, StopOnSignal } from '../stop-on-signal';

export function backupCommand(run: Runner): Command {
  return new Command('backup')
    .description(
      'write a consistent snapshot of the whole store (one revision; the server keeps taking writes) to FILE, ' +
        'checked against its checksum, readable by its owner only (mode 0600: it holds every value); an existing FILE is ' +
        'replaced only once the new one is complete (at the target of a symbolic link, the link kept; a device or FIFO is ' +
        'written straight through), and Ctrl-C leaves it as it was. FILE "-" writes the backup to stdout ' +
        '(a pipe or file, not a terminal) and the summary to stderr. Needs admin on every key',
    )
    .argument('<file>', 'the backup file, or - for stdout')
    .action(
      run(async (session, file: string) => {
        const toStdout = file === '-';
        if (toStdout && session.stdout.isTTY === true) {
          throw new CliError('backup -: stdout is a terminal; redirect it to a file or a pipe (kvctl backup - | gzip > kv.backup.gz)');
        }
        // A closed pipe fails the backup (it is not complete), rather than ending kvctl quietly as it does for ls | head.
        if (toStdout) session.stdout.on('error', () => undefined);
        const bar = progressBar(session.stderr, 'backup');
        const incomplete = toStdout ? 'the backup written to stdout is incomplete' : 'no backup was written';
        // Ctrl-C or SIGTERM stops the backup at once, even a server that sends nothing: the SDK cancels the stream and
        // removes the unfinished file, and kvctl ends by the signal.
        const stop = new StopOnSignal();
        const abort = new AbortController();
        void stop.signalled.then(() => abort.abort());
        let summary;
        try {
          summary = await session.kv().backup(toStdout ? session.stdout : file, {
            onProgress: (progress) => bar.update(progress),
            signal: abort.signal,
          });
          // A signal during the backup's last steps (its read-back, the rename) stopped nothing: the file is complete.
          const late = await stop.lastSignal();
          if (late !== undefined) {
            bar.stop();
            session.warn(
              `${new Interrupted(late).message} as the backup finished: ${toStdout ? 'the backup written to stdout' : JSON.stringify(file)} is complete (revision ${summary.revision})`,
            );
            return stop.dieOf(late);
          }
        } catch (error) {
          if (stop.signal !== undefined) {
            bar.stop();
            session.warn(`${new Interrupted(stop.signal).message}; ${incomplete}`);
            return stop.dieOf(stop.signal);
          }
          // The file cannot be written (no name, a directory, no such directory, no permission, a full disk): checked before the server is asked.
          if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && !('metadata' in error)) {
            if (toStdout) throw new CliError(`cannot write the backup to stdout: ${error.message}; the backup is incomplete`, EXIT.usage);
            throw new CliError(`cannot write backup file ${JSON.stringify(file)}: ${error.message}; no backup was written`, EXIT.usage);
          }
          throw asDamaged(error, incomplete);
        } finally {
          stop.close();
          bar.stop();
        }
        const { revision, keyCount, leaseCount, bytes, sha256 } = summary;
        // With the backup on stdout, its summary goes to stderr.
        const printer = toStdout ? new Printer(session.printer.mode, (text) => session.stderr.write(text)) : session.printer;
        printer.print({
          json: { file, revision, keys: keyCount, leases: leaseCount, bytes, sha256 },
          table: [
            ['FILE', 'REVISION', 'KEYS', 'LEASES', 'BYTES', 'SHA256'],
            [file, String(revision), String(keyCount), String(leaseCount), String(bytes), sha256],
          ],
          value: String(revision),
        });
      }),
    );
}
