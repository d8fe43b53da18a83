import { Command } from 'commander';
import { clearCommand } from './commands/clear';
import { delCommand } from './commands/del';
import { getCommand } from './commands/get';
import { healthCommand } from './commands/health';
import { lsCommand } from './commands/ls';
import { setCommand } from './commands/set';
import { versionCommand } from './commands/version';
import { backupCommand } from './commands/backup';
import { leaseCommand } from './commands/lease';
import { restoreCommand } from './commands/restore';
import { importCommand } from './commands/import';
import { txnCommand } from './commands/txn';
import { updateCommand } from './commands/update';
import { watchCommand } from './commands/watch';
import { EXIT_CODES_HELP } from './exit-codes';
import { addGlobalOptions } from './global-options';
import { KVCTL_VERSION } from './kvctl-version';
import type { Runner } from './session';

/** Every command, one file each: a new command is one more file and one more line here. */
const COMMANDS: ((run: Runner) => Command)[] = [
  getCommand,
  setCommand,
  updateCommand,
  delCommand,
  lsCommand,
  clearCommand,
  watchCommand,
  txnCommand,
  leaseCommand,
  backupCommand,
  restoreCommand,
  importCommand,
  healthCommand,
  versionCommand,
];

const ENVIRONMENT_HELP = `Environment (a flag wins over its variable; an empty variable counts as unset):
  KV_ENDPOINTS, KV_TLS_CA, KV_CLIENT_TLS_CERT, KV_CLIENT_TLS_KEY, KV_TOKEN, KV_OUTPUT, KV_TIMEOUT_MS`;

/** kvctl's command line. Errors surface as exceptions (exitOverride); main turns them into one line and an exit code. */
export function createProgram(run: Runner, writeErr: (text: string) => void): Command {
  const program = new Command('kvctl')
    .description('The terminal client for kv: one command per operation; JSON when piped, a table on a terminal.')
    .version(KVCTL_VERSION, '-V, --version', "print kvctl's version")
    .exitOverride()
    .configureOutput({ writeErr, outputError: (text, write) => write(`kvctl: ${text.replace(/^error: /, '').trim()}\n`) })
    .showSuggestionAfterError()
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);
  addGlobalOptions(program);
  for (const make of COMMANDS) program.addCommand(inheritSettings(make(run), program));
  return program;
}

/** A command and its own subcommands (lease grant, ...) fail and print like the program itself. */
function inheritSettings(command: Command, program: Command): Command {
  command.copyInheritedSettings(program);
  for (const sub of command.commands) inheritSettings(sub, program);
  return command;
}
