import { Command } from 'commander';
import { KVCTL_VERSION } from '../kvctl-version';
import type { Runner } from '../session';

export function versionCommand(run: Runner): Command {
  return new Command('version').description("print kvctl's version").action(
    run((session) => {
      session.printer.print({ json: { kvctl: KVCTL_VERSION }, table: `kvctl ${KVCTL_VERSION}`, value: KVCTL_VERSION });
      return Promise.resolve();
    }),
  );
}
