#!/usr/bin/env node
import { getSystemErrorMap } from 'node:util';
import { CommanderError } from 'commander';
import { KvError } from '@kv/client';
import { CliError } from './cli-error';
import { EXIT, exitCodeForError, type ExitCode } from './exit-codes';
import { createProgram } from './program';
import { invalidUtf8Argument } from './raw-arguments';
import { makeRunner, type Io } from './session';

/** Runs one kvctl command line; every failure becomes one line on stderr and an exit code, never a stack. */
export async function main(argv: string[], io: Io): Promise<ExitCode> {
  const notUtf8 = invalidUtf8Argument(argv);
  if (notUtf8 !== undefined) {
    io.stderr.write(`kvctl: ${notUtf8}\n`);
    return EXIT.usage;
  }
  // An empty variable (KV_TOKEN= kvctl ...) is one left unset, as in most tools: not a flag given empty.
  for (const [name, value] of Object.entries(process.env)) if (name.startsWith('KV_') && value === '') delete process.env[name];
  let exitCode: ExitCode = EXIT.ok;
  const run = makeRunner(io, (code) => (exitCode = code));
  const program = createProgram(run, (text) => io.stderr.write(text));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    // commander has already printed its own message (usage mistakes) or the help/version.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const tokenGiven =
      process.env.KV_TOKEN !== undefined ||
      process.env.KV_TOKEN_FILE !== undefined ||
      argv.some((arg) => /^--token(-file)?(=|$)/.test(arg));
    const { message, code } = describe(error, tokenGiven);
    io.stderr.write(`kvctl: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    return code;
  }
}

function describe(error: unknown, tokenGiven: boolean): { message: string; code: ExitCode } {
  if (error instanceof CliError) return { message: error.message, code: error.exitCode };
  if (error instanceof KvError) {
    // The server's words name the header; a kvctl user sends it with --token-file or --token.
    const hint =
      error.reason === 'UNAUTHENTICATED' && !tokenGiven
        ? ': give kvctl a token with --token-file or --token (KV_TOKEN_FILE, KV_TOKEN)'
        : '';
    return { message: `${error.message} (${error.reason})${hint}`, code: exitCodeForError(error) };
  }
  return { message: `unexpected failure: ${error instanceof Error ? error.message : String(error)}`, code: EXIT.serverError };
}

/** "ENOSPC (no space left on device)": the error's code and the system's words for it, without Node's call name. */
function systemErrorText(error: NodeJS.ErrnoException): string {
  const words = error.errno === undefined ? undefined : getSystemErrorMap().get(error.errno)?.[1];
  if (error.code === undefined) return error.message;
  return words === undefined ? error.code : `${error.code} (${words})`;
}

/** Runs kvctl as the process: argv, stdio, exit code. */
export function runCli(): void {
  // grpc-js sets TLS ServerName to an IP endpoint, which Node reports as deprecated on stderr; a kvctl user can do nothing about it.
  process.noDeprecation = true;
  // `kvctl ls | head -1` closes the pipe early: that is the reader's choice, not an error. Unless a command
  // listens itself (`backup -`: a backup cut short is a failure).
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (process.stdout.listenerCount('error') > 1) return;
    if (error.code === 'EPIPE') process.exit(EXIT.ok);
    // A full disk or a device that refuses writes: the output is lost, which a script must learn (exit 2, as for backup -).
    process.stderr.write(`kvctl: cannot write output: ${systemErrorText(error)}\n`);
    process.exit(EXIT.usage);
  });
  void main(process.argv.slice(2), process).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) runCli();
