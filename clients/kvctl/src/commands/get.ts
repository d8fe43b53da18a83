import { Command } from 'commander';
import { CliError } from '../cli-error';
import { ENTRY_HEADER, entryJson, entryRow } from '../entry-forms';
import { EXIT } from '../exit-codes';
import { limitOption, pageSizeFor, take } from '../limit';
import { listedPages, printRevisionOption } from '../listed-pages';
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
    .addOption(printRevisionOption('with --prefix: '))
    .action(
      run(async (session, key: string | undefined, options: { prefix?: string; limit?: number; printRevision?: boolean }) => {
        if (key !== undefined && options.prefix !== undefined) throw new CliError('get takes a KEY or --prefix, not both');
        if (key === undefined && options.prefix === undefined) throw new CliError('get needs a KEY, or --prefix PREFIX ("" for every key)');
        if (options.prefix !== undefined) {
          const kv = session.kv();
          const prefix = options.prefix;
          const pageSize = pageSizeFor(options.limit);
          const listing = listedPages(async (pageToken) => {
            const page = await kv.listPage({ prefix, pageSize, pageToken });
            return { items: page.entries, nextPageToken: page.nextPageToken, revision: page.revision };
          });
          await session.printer.printList(take(listing.items, options.limit), {
            json: entryJson,
            header: ENTRY_HEADER,
            row: entryRow,
            value: (entry) => bareValue(entry.value),
          });
          listing.finish(session, options.printRevision);
          return;
        }
        if (options.limit !== undefined) throw new CliError('--limit goes with --prefix (get KEY prints one entry)');
        if (options.printRevision === true) throw new CliError("--print-revision goes with --prefix (a KEY's entry has its modRevision)");
        const entry = await session.kv().get(key as string);
        if (entry === undefined) throw new CliError(`key "${key}" not found`, EXIT.notFound);
        session.printer.print({ json: entryJson(entry), table: [ENTRY_HEADER, entryRow(entry)], value: bareValue(entry.value) });
      }),
    );
}
