import { Command } from 'commander';
import { ENTRY_HEADER, entryJson, entryRow } from '../entry-forms';
import { bareValue } from '../output';
import { readValue } from '../read-value';
import type { Runner } from '../session';
import { expectedRevisionOption, parseExpectedRevision } from './expected-revision';

export function updateCommand(run: Runner): Command {
  return new Command('update')
    .description('merge a JSON merge PATCH (RFC 7396) into the value under KEY, atomically on the server, and print the new entry')
    .argument('<key>')
    .argument('[patch]', 'JSON (\'{"a":1,"b":null}\' sets a, removes b), @FILE, or - / nothing to read stdin')
    .option('--create', 'if KEY does not exist, merge into {} instead of failing (exit 1)')
    .addOption(expectedRevisionOption)
    .action(
      run(async (session, key: string, argument: string | undefined, options: { create?: boolean; expectedRevision?: string }) => {
        const expectedRevision = parseExpectedRevision(options.expectedRevision);
        if (argument === undefined && session.stdin.isTTY === true) session.warn('reading the patch from the terminal; end it with Ctrl-D');
        const patch = await readValue(argument, session.stdin, 'patch');
        const entry = await session.kv().update(key, patch, { expectedRevision, createIfMissing: options.create === true });
        session.printer.print({ json: entryJson(entry), table: [ENTRY_HEADER, entryRow(entry)], value: bareValue(entry.value) });
      }),
    );
}
