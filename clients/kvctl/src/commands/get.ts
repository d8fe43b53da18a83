import { Command } from 'commander';
import { CliError } from '../cli-error';
import { ENTRY_HEADER, entryJson, entryRow } from '../entry-forms';
import { EXIT } from '../exit-codes';
import { limitOption, pageSizeFor, take } from '../limit';
import { bareValue } from '../output';
import type { Runner } from '../session';

export function getCommand(run: Runner): Command {
  return new Command('get')
    .description(
      'print the entry under KEY (exit 1 if there is none), or with --prefix P every entry under P, every page, ' +
        'in code point order of the keys (like etcdctl get --prefix, but page by page: each page is read at its own revision, ' +
        'so writes between pages may show; kvctl backup is one snapshot)',
    )
    .argument('[key]', 'the key (or --prefix)')
    .option('--prefix <prefix>', 'print every entry (key and value) under this prefix ("" for all keys)')
    .addOption(limitOption('entries (with --prefix)'))
    .action(
      run(async (session, key: string | undefined, options: { prefix?: string; limit?: number }) => {
        if (key !== undefined && options.prefix !== undefined) throw new CliError('get takes a KEY or --prefix, not both');
        if (key === undefined && options.prefix === undefined) throw new CliError('get needs a KEY, or --prefix PREFIX ("" for every key)');
        if (options.prefix !== undefined) {
          const entries = session.kv().entries({ prefix: options.prefix, pageSize: pageSizeFor(options.limit) });
          await session.printer.printList(take(entries, options.limit), {
            json: entryJson,
            header: ENTRY_HEADER,
            row: entryRow,
            value: (entry) => bareValue(entry.value),
          });
          return;
        }
        if (options.limit !== undefined) throw new CliError('--limit goes with --prefix (get KEY prints one entry)');
        const entry = await session.kv().get(key as string);
        if (entry === undefined) throw new CliError(`key "${key}" not found`, EXIT.notFound);
        session.printer.print({ json: entryJson(entry), table: [ENTRY_HEADER, entryRow(entry)], value: bareValue(entry.value) });
      }),
    );
}
