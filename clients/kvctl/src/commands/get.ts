import { Command } from 'commander';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import { bareValue } from '../output';
import type { Runner } from '../session';

export function getCommand(run: Runner): Command {
  return new Command('get')
    .description('print the entry under KEY (exit 1 if there is none)')
    .argument('<key>')
    .action(
      run(async (session, key: string) => {
        const entry = await session.kv().get(key);
        if (entry === undefined) throw new CliError(`key "${key}" not found`, EXIT.notFound);
        const { value, createRevision, modRevision, version } = entry;
        session.printer.print({
          json: { key, value, createRevision, modRevision, version },
          table: [
            ['KEY', 'VERSION', 'CREATE_REVISION', 'MOD_REVISION', 'VALUE'],
            [key, String(version), String(createRevision), String(modRevision), JSON.stringify(value)],
          ],
          value: bareValue(value),
        });
      }),
    );
}
