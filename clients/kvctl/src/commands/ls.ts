import { Command } from 'commander';
import { limitOption, pageSizeFor, take } from '../limit';
import { listedPages, printRevisionOption } from '../listed-pages';
import type { Runner } from '../session';

export function lsCommand(run: Runner): Command {
  return new Command('ls')
    .description(
      'list the keys under PREFIX (all keys without one), every page, in code point order ' +
        '(each page is read at its own revision, so writes between pages may show)',
    )
    .argument('[prefix]', 'key prefix', '')
    .addOption(limitOption('keys'))
    .addOption(printRevisionOption())
    .action(
      run(async (session, prefix: string, options: { limit?: number; printRevision?: boolean }) => {
        const kv = session.kv();
        const pageSize = pageSizeFor(options.limit);
        const listing = listedPages(async (pageToken) => {
          const page = await kv.listKeysPage({ prefix, pageSize, pageToken });
          return { items: page.keys, nextPageToken: page.nextPageToken, revision: page.revision };
        });
        await session.printer.printList(take(listing.items, options.limit), {
          json: (key) => key,
          header: ['KEY'],
          row: (key) => [key],
          value: (key) => key,
        });
        listing.finish(session, options.printRevision);
      }),
    );
}
