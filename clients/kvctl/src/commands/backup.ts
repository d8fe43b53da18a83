import { Command } from 'commander';
import { asDamaged } from '../backup-errors';
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
