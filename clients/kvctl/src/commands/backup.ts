import { Command } from 'commander';
import { asDamaged } from '../backup-errors';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import { progressBar } from '../progress-bar';
import type { Runner } from '../session';

export function backupCommand(run: Runner): Command {
  return new Command('backup')
    .description(
      'write a consistent snapshot of the whole store (one revision; the server keeps taking writes) to FILE, ' +
        'checked against its checksum; an existing FILE is replaced only once the new one is complete. Needs admin on every key',
    )
    .argument('<file>')
    .action(
      run(async (session, file: string) => {
        const bar = progressBar(session.stderr, 'backup');
        let summary;
        try {
          summary = await session.kv().backup(file, { onProgress: (progress) => bar.update(progress) });
        } catch (error) {
          // The file cannot be written (no name, a directory, no such directory, no permission, a full disk): checked before the server is asked.
          if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && !('metadata' in error)) {
            throw new CliError(`cannot write backup file ${JSON.stringify(file)}: ${error.message}; no backup was written`, EXIT.usage);
          }
          throw asDamaged(error, 'no backup was written');
        } finally {
          bar.stop();
        }
        const { revision, keyCount, leaseCount, bytes, sha256 } = summary;
        session.printer.print({
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
