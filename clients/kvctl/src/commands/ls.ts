import { Command } from 'commander';
import { limitOption, pageSizeFor, take } from '../limit';
import type { Runner } from '../session';

export function lsCommand(run: Runner): Command {
  return new Command('ls')
    .description('list the keys under PREFIX (all keys without one), every page, in code point order')
    .argument('[prefix]', 'key prefix', '')
    .addOption(limitOption('keys'))
    .action(
      run(async (session, prefix: string, options: { limit?: number }) => {
        const keys = session.kv().keys({ prefix, pageSize: pageSizeFor(options.limit) });
        await session.printer.printList(take(keys, options.limit), {
          json: (key) => key,
          header: ['KEY'],
          row: (key) => [key],
          value: (key) => key,
        });
      }),
    );
}
