import { Command } from 'commander';
import type { Runner } from '../session';

export function lsCommand(run: Runner): Command {
  return new Command('ls')
    .description('list the keys under PREFIX (all keys without one), every page, in code point order')
    .argument('[prefix]', 'key prefix', '')
    .action(
      run(async (session, prefix: string) => {
        await session.printer.printList(session.kv().keys({ prefix }), {
          json: (key) => key,
          header: ['KEY'],
          row: (key) => [key],
          value: (key) => key,
        });
      }),
    );
}
