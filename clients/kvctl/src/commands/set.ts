import { Command } from 'commander';
import { readValue } from '../read-value';
import type { Runner } from '../session';
import { expectedRevisionOption, parseExpectedRevision } from './expected-revision';

export function setCommand(run: Runner): Command {
  return new Command('set')
    .description('store a JSON VALUE under KEY and print the new revision')
    .argument('<key>')
    .argument('[value]', 'JSON (\'{"a":1}\', \'"text"\', 42), @FILE, or - / nothing to read stdin')
    .addOption(expectedRevisionOption)
    .action(
      run(async (session, key: string, argument: string | undefined, options: { expectedRevision?: string }) => {
        const expectedRevision = parseExpectedRevision(options.expectedRevision);
        if (argument === undefined && session.stdin.isTTY === true) session.warn('reading the value from the terminal; end it with Ctrl-D');
        const value = await readValue(argument, session.stdin);
        const revision = await session.kv().set(key, value, { expectedRevision });
        session.printer.print({
          json: { key, revision },
          table: [
            ['KEY', 'REVISION'],
            [key, String(revision)],
          ],
          value: String(revision),
        });
      }),
    );
}
