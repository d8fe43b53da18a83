import { Command, type HelpContext } from 'commander';
import { CliError } from './cli-error';
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

const ENVIRONMENT_HELP = `Environment (a flag wins over its variable, and --token or --token-file over KV_TOKEN_FILE or KV_TOKEN;
  an empty variable counts as unset):
  KV_ENDPOINTS, KV_TLS_CA, KV_CLIENT_TLS_CERT, KV_CLIENT_TLS_KEY, KV_TLS_SERVER_NAME, KV_TOKEN, KV_TOKEN_FILE, KV_OUTPUT, KV_TIMEOUT_MS`;

/** kvctl's command line. Errors surface as exceptions (exitOverride); main turns them into one line and an exit code. */
export function createProgram(run: Runner, writeErr: (text: string) => void): Command {
  const program = new Command('kvctl')
    .description('The terminal client for kv: one command per operation; JSON when piped, a table on a terminal.')
    .version(KVCTL_VERSION, '-V, --version', "print kvctl's version")
    .exitOverride()
    // One line, as every kvctl error: commander puts its suggestion ("(Did you mean get?)") on a line of its own.
    .configureOutput({
      writeErr,
      outputError: (text, write) =>
        write(
          `kvctl: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    })
    .showSuggestionAfterError()
    // A command's --help lists the global flags too (under "Global Options:"): they are given after the command as well.
    .configureHelp({ showGlobalOptions: true })
    .helpCommand(false)
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);
  addGlobalOptions(program);
  for (const make of COMMANDS) program.addCommand(inheritSettings(make(run), program));
  addHelpCommands(program, () => createProgram(run, writeErr));
  return program;
}

/**
 * `help [command...]` for the program and each command with subcommands (lease), in place of commander's own, which
 * answers a name that is no command with the whole help on stderr and no word of what was wrong. `fresh` makes another
 * program, to parse a name that is no command: it then fails as that command line would ("unknown command", its suggestion).
 */
function addHelpCommands(command: Command, fresh: () => Command): void {
  for (const sub of command.commands) if (sub.commands.length > 0) addHelpCommands(sub, fresh);
  askForSubcommand(command);
  const help = new Command('help')
    .description('display help for command')
    .argument('[command...]')
    .action(async (names: string[]) => {
      let target = command;
      for (const [i, name] of names.entries()) {
        // A command without subcommands takes the rest as its arguments, as in its own --help.
        if (target.commands.length === 0) break;
        const next = target.commands.find((candidate) => candidate.name() === name || candidate.aliases().includes(name));
        if (next === undefined) {
          const path = [...ancestorNames(command), ...names.slice(0, i + 1)];
          await fresh().parseAsync(path, { from: 'user' });
          return;
        }
        target = next;
      }
      target.help();
    });
  command.addCommand(inheritSettings(help, command));
}

/**
 * `kvctl` or `kvctl lease` with no command: one line naming the commands (exit 2), as any other usage mistake, in place
 * of commander's whole help on stderr. commander asks for help "as an error" only there; --help and `help` still print it.
 */
function askForSubcommand(command: Command): void {
  const help: Command['help'] = command.help.bind(command);
  command.help = (context?: HelpContext | ((text: string) => string)): never => {
    if (typeof context === 'function') return help(context);
    if (context?.error !== true) return help(context);
    const path = ['kvctl', ...ancestorNames(command)].join(' ');
    const names = command.commands.map((sub) => sub.name()).filter((name) => name !== 'help');
    throw new CliError(`${path} needs a command: ${names.join(', ')} (\`${path} --help\` says what each does)`);
  };
}

/** The names of the commands from the program (excluded) down to `command`: ["lease"] for lease. */
function ancestorNames(command: Command): string[] {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent != null; at = at.parent) names.unshift(at.name());
  return names;
}

/** A command and its own subcommands (lease grant, ...) fail and print like the program itself. */
function inheritSettings(command: Command, program: Command): Command {
  command.copyInheritedSettings(program);
  for (const sub of command.commands) inheritSettings(sub, program);
  return command;
}
