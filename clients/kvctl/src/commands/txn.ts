import { Command, Option } from 'commander';
import { KvError, type TxnOpResult } from '@kv/client';
import { entryJson } from '../entry-forms';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import type { Runner } from '../session';
import { COMPARE_SYNTAX, inUserTerms, OP_SYNTAX, parseCompare, parseOp } from '../txn-syntax';

/** How a key that is not one bare word is written (each --if/--then/--else is one shell argument, so quote it whole). */
export const TXN_KEY_HELP = `
Keys: a key is written bare up to the first space (or the ")" of a compare), or as a JSON string, in double
quotes, for a key with spaces, quotes or ")" in it ("" is the empty prefix of clear). Quote each
--if/--then/--else whole for the shell, e.g.:
  kvctl txn --if 'version("a key") = 0' --then 'set "a key" {"n": 1}' --then 'get "a key"'`;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function txnCommand(run: Runner): Command {
  return new Command('txn')
    .description(
      'an atomic transaction: if every --if holds, the --then ops run, otherwise the --else ops; all of it one revision. ' +
        'Exit 0 if the compares held, 3 if the --else ops ran',
    )
    .addOption(new Option('--if <compare>', `a condition (repeatable): ${COMPARE_SYNTAX}`).argParser(collect))
    .addOption(new Option('--then <op>', `an op if they hold (repeatable): ${OP_SYNTAX}`).argParser(collect))
    .addOption(new Option('--else <op>', 'an op if they do not (repeatable)').argParser(collect))
    .option('-y, --yes', 'do not ask for confirmation of a clear (asked on a terminal, as kvctl clear asks)')
    .addHelpText('after', TXN_KEY_HELP)
    .action(
      run(async (session, options: { if?: string[]; then?: string[]; else?: string[]; yes?: boolean }) => {
        // An empty transaction does nothing and succeeds: without any of the three it is a command line cut short.
        if (options.if === undefined && options.then === undefined && options.else === undefined) {
          throw new CliError(`txn needs an --if, --then or --else, e.g. kvctl txn --if 'version(k) = 0' --then 'set k 1'`);
        }
        const compares = (options.if ?? []).map(parseCompare);
        const thenOps = (options.then ?? []).map((op) => parseOp(op, '--then'));
        const elseOps = (options.else ?? []).map((op) => parseOp(op, '--else'));
        const clears = [...thenOps, ...elseOps].flatMap((op) => (op.kind === 'clear' ? [op.wire.clear?.prefix ?? ''] : []));
        if (clears.length > 0 && options.yes !== true && session.stdin.isTTY === true) {
          const what = clears.map((prefix) => (prefix === '' ? 'every key in the store' : `every key under "${prefix}"`)).join(', ');
          if (!(await session.ask(`This transaction may delete ${what}: go on?`)))
            throw new CliError('not confirmed; nothing changed', EXIT.declined);
        }
        const txn = session
          .kv()
          .txn()
          .if(...compares)
          .then(...thenOps)
          .else(...elseOps);
        const { succeeded, revision, results } = await txn.commit().catch((error: unknown) => {
          if (!(error instanceof KvError)) throw error;
          const typedAs = { if: options.if ?? [], then: options.then ?? [], else: options.else ?? [] };
          const { code, reason, currentRevision, oldestRevision, resumeRevision } = error;
          const message = inUserTerms(error.message, typedAs);
          throw message === error.message
            ? error
            : new KvError(message, code, reason, currentRevision, error, { oldestRevision, resumeRevision });
        });
        session.printer.print({
          json: { succeeded, revision, results: results.map(resultJson) },
          table: [
            ['SUCCEEDED', 'REVISION', 'RESULTS'],
            [String(succeeded), String(revision), JSON.stringify(results.map(resultJson))],
          ],
          value: String(succeeded),
        });
        return succeeded ? EXIT.ok : EXIT.conflict;
      }),
    );
}

function resultJson(result: TxnOpResult): unknown {
  if (result.type !== 'get' && result.type !== 'update') return result;
  const entry = result.entry;
  if (entry === undefined) return { type: result.type, found: false };
  return { type: result.type, ...entryJson(entry) };
}
