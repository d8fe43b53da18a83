import { Command } from 'commander';
import { readValue } from '../read-value';
import type { Runner } from '../session';
import { CliError } from '../cli-error';
import { expectedRevisionOption, parseExpectedRevision, parsePositiveNumber } from './expected-revision';

export function setCommand(run: Runner): Command {
  return new Command('set')
    .description('store a JSON VALUE under KEY and print the new revision')
    .argument('<key>')
    .argument('[value]', 'JSON (\'{"a":1}\', \'"text"\', 42), @FILE, or - / nothing to read stdin')
    .addOption(expectedRevisionOption)
    .option('--lease <id>', 'attach KEY to this lease (kvctl lease grant): it goes when the lease expires or is revoked')
    .option('--ttl-ms <ms>', 'delete KEY after this many milliseconds unless it is set again')
    .action(
      run(
        async (
          session,
          key: string,
          argument: string | undefined,
          options: { expectedRevision?: string; lease?: string; ttlMs?: string },
        ) => {
          const expectedRevision = parseExpectedRevision(options.expectedRevision);
          const lease = parsePositiveNumber(options.lease, '--lease', 'a lease id is positive; 0 would mean no lease');
          const ttlMs = parsePositiveNumber(options.ttlMs, '--ttl-ms', 'a time to live is at least 1 ms; 0 would mean none');
          if (lease !== undefined && ttlMs !== undefined) throw new CliError('give --lease or --ttl-ms, not both');
          if (argument === undefined && session.stdin.isTTY === true)
            session.warn('reading the value from the terminal; end it with Ctrl-D');
          const value = await readValue(argument, session.stdin);
          const revision = await session.kv().set(key, value, { expectedRevision, lease, ttlMs });
          session.printer.print({
            json: { key, revision },
            table: [
              ['KEY', 'REVISION'],
              [key, String(revision)],
            ],
            value: String(revision),
          });
        },
      ),
    );
}
