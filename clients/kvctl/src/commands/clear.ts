import { Command } from 'commander';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import type { Runner } from '../session';

export function clearCommand(run: Runner): Command {
  return new Command('clear')
    .description('delete every key under PREFIX ("" for all) in one step; asks first on a terminal')
    .argument('<prefix>', 'key prefix; "" clears the whole store')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      run(async (session, prefix: string, options: { yes?: boolean }) => {
        if (options.yes !== true && session.stdin.isTTY === true) {
          const what = prefix === '' ? 'every key in the store' : `every key under "${prefix}"`;
          if (!(await session.ask(`Delete ${what}?`))) throw new CliError('not confirmed; nothing deleted', EXIT.declined);
        }
        const deletedCount = await session.kv().clear({ prefix });
        session.printer.print({
          json: { prefix, deletedCount },
          table: [
            ['PREFIX', 'DELETED'],
            [prefix, String(deletedCount)],
          ],
          value: String(deletedCount),
        });
      }),
    );
}
