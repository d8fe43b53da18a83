import { Command } from 'commander';
import type { Runner } from '../session';
import { deleteExpectedRevisionOption, parseDeleteExpectedRevision } from './expected-revision';

export function delCommand(run: Runner): Command {
  return new Command('del')
    .description('delete KEY; a missing key is not an error (deleted: false)')
    .argument('<key>')
    .addOption(deleteExpectedRevisionOption)
    .action(
      run(async (session, key: string, options: { expectedRevision?: string }) => {
        const expectedRevision = parseDeleteExpectedRevision(options.expectedRevision);
        const deleted = await session.kv().delete(key, { expectedRevision });
        session.printer.print({
          json: { key, deleted },
          table: [
            ['KEY', 'DELETED'],
            [key, String(deleted)],
          ],
          value: String(deleted),
        });
      }),
    );
}
