import { Command, Option } from 'commander';
import type { KvWatchEvent } from '@kv/client';
import { CliError } from '../cli-error';
import { READ_ATTEMPTS } from '../connect';
import { bareValue } from '../output';
import type { Runner } from '../session';
import { StopOnSignal } from '../stop-on-signal';
import { parsePositiveNumber } from './expected-revision';

export function watchCommand(run: Runner): Command {
  return new Command('watch')
    .description(
      'print every change to KEY, or to every key under --prefix, as it happens (one JSON line per event when piped), ' +
        'until Ctrl-C (exit 130) or --count events (exit 0); with -o value, the value of each set, and a delete as a line on stderr ' +
        '(not an empty line, which is a set to ""); resumes by itself after a disconnect or a server restart (saying so on stderr); exit 4 if no server answers at the start',
    )
    .argument('[key]', 'the key to watch (or --prefix)')
    .option('--prefix <prefix>', 'watch every key under this prefix ("" for all keys)')
    .option('--rev <revision>', 'start at this revision: replay every change since (as far as the server keeps history), then go on live')
    .option('--prev', "also print each changed key's previous entry")
    .addOption(new Option('--count <n>', 'stop after this many events (e.g. 1: wait for the next change)'))
    .action(
      run(async (session, key: string | undefined, options: { prefix?: string; rev?: string; prev?: boolean; count?: string }) => {
        if (key !== undefined && options.prefix !== undefined) throw new CliError('watch needs a KEY or --prefix, not both');
        if (key === undefined && options.prefix === undefined)
          throw new CliError('watch needs a KEY or --prefix PREFIX ("" for every key)');
        const startRevision = parsePositiveNumber(options.rev, '--rev', 'revisions start at 1; leave --rev out to watch from now on');
        const count = parsePositiveNumber(options.count, '--count') ?? Number.POSITIVE_INFINITY;
        const watch = session.kv().watch({
          // Exactly one of the two (checked above); WatchOptions is a union that says so.
          ...(key !== undefined ? { key } : { prefix: options.prefix ?? '' }),
          startRevision,
          prevEntry: options.prev === true,
          // A server that cannot be reached at the start is an error (exit 4) after as long as a read would try;
          // once the watch has started it resumes across restarts for as long as it takes, saying so on stderr.
          startAttempts: READ_ATTEMPTS,
          // A server that takes the connection but never answers (stopped, or not a kv server) is given --timeout-ms.
          startTimeoutMs: session.options.timeoutMs,
          // Told as the revision every change through which is printed (the watch's own `revision`), which the next event
          // is after: the SDK's resume point may be a revision printed already, when a transaction's events were cut off.
          onResume: (change) => {
            const after = watch.revision > 0 ? ` after revision ${watch.revision}` : '';
            session.warn(change.state === 'lost' ? `lost the watch stream (${change.reason}); resuming${after}` : `watch resumed${after}`);
          },
        });
        // Ctrl-C or SIGTERM closes the watch (the events printed so far are out), then kvctl ends by the signal, as
        // any command stopped by one: a script tells a watch it stopped from one that saw its --count events (exit 0).
        const stop = new StopOnSignal();
        void stop.signalled.then(() => watch.close());
        let seen = 0;
        try {
          for await (const event of watch) {
            // -o value prints values, and a delete has none: an empty line would read as a set to "". It is said on stderr.
            if (session.printer.mode === 'value' && event.entry === undefined) {
              session.warn(`key ${JSON.stringify(event.key)} deleted at revision ${event.revision} (-o value prints the values set)`);
            } else session.printer.printLine(eventForms(event, options.prev === true));
            if (++seen >= count) break;
          }
        } finally {
          stop.close();
          watch.close();
        }
        if (stop.signal !== undefined) stop.dieOf(stop.signal);
      }),
    );
}

/** An event as JSON, a table row (TYPE KEY REVISION VALUE, then the previous value with --prev) and a bare value. */
function eventForms(event: KvWatchEvent, withPrev: boolean): { json: unknown; row: string[]; value: string } {
  const { type, key, revision, entry, prev } = event;
  const json: Record<string, unknown> = { type, key, revision };
  if (entry !== undefined) {
    Object.assign(json, { value: entry.value, createRevision: entry.createRevision, version: entry.version });
    if (entry.lease !== 0) json.lease = entry.lease;
  }
  if (prev !== undefined) {
    // As an entry is shown, with its modRevision: a delete of an expired or revoked key names the lease it was on.
    const shown: Record<string, unknown> = {
      value: prev.value,
      createRevision: prev.createRevision,
      modRevision: prev.modRevision,
      version: prev.version,
    };
    if (prev.lease !== 0) shown.lease = prev.lease;
    json.prev = shown;
  }
  return {
    json,
    row: [
      type.toUpperCase(),
      key,
      String(revision),
      entry === undefined ? '' : JSON.stringify(entry.value),
      // With --prev a delete shows what it deleted; "(none)" for a key that had no entry before.
      ...(withPrev ? [prev === undefined ? '(none)' : `was ${JSON.stringify(prev.value)}`] : []),
    ],
    // A delete is not printed with -o value (the command says it on stderr).
    value: entry === undefined ? '' : bareValue(entry.value),
  };
}
