import type { Command } from 'commander';
import { KvError, status, type KvClient } from '@kv/client';
import { CliError } from './cli-error';
import { confirm } from './confirm';
import { connect } from './connect';
import { describeConnectionFailure } from './connection-failure';
import { EXIT, type ExitCode } from './exit-codes';
import { optionNamer, resolveGlobalOptions, type GlobalOptions } from './global-options';
import { Printer } from './output';

/** The process's streams, so tests and main share one code path. */
export interface Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** What a command's action works with. */
export interface Session {
  options: GlobalOptions;
  printer: Printer;
  /** The SDK client, connected on first use and closed when the command ends. */
  kv(): KvClient;
  stdin: Io['stdin'];
  /** A one-line notice on stderr. */
  warn(line: string): void;
  /** Asks on the terminal; only call when stdin is one. */
  ask(question: string): Promise<boolean>;
  /** Where progress bars go (drawn only if it is a terminal). */
  stderr: Io['stderr'];
  /** Where results go (through printer), or a backup's bytes (backup -). */
  stdout: Io['stdout'];
}

/** A command's action: returns the exit code if it is not 0 without being an error (health NOT_SERVING). */
export type Action<A extends unknown[]> = (session: Session, ...args: A) => Promise<ExitCode | void>;

/** Turns an Action into a commander action handler. */
export type Runner = <A extends unknown[]>(action: Action<A>) => (...args: unknown[]) => Promise<void>;

export function makeRunner(io: Io, setExitCode: (code: ExitCode) => void): Runner {
  return <A extends unknown[]>(action: Action<A>) =>
    async (...args: unknown[]): Promise<void> => {
      // commander passes the positional arguments, the command's own options, then the command.
      const command = args[args.length - 1] as Command;
      const options = resolveGlobalOptions(command.optsWithGlobals(), io.stdout.isTTY === true, optionNamer(command));
      const warn = (line: string): void => void io.stderr.write(`kvctl: ${line}\n`);
      let client: KvClient | undefined;
      const session: Session = {
        options,
        printer: new Printer(options.output, (text) => io.stdout.write(text)),
        kv: () => (client ??= connect(options)),
        stdin: io.stdin,
        warn,
        ask: (question) => confirm(question, io.stdin, io.stderr),
        stderr: io.stderr,
        stdout: io.stdout,
      };
      try {
        const code = await action(session, ...(args.slice(0, -1) as A));
        if (code !== undefined) setExitCode(code);
      } catch (error) {
        // grpc-js does not say which address it could not reach; a person needs to know.
        // NOT_GRPC too (a port that is not kv's gRPC one); with several endpoints the SDK's message names the one that answered so.
        const notGrpcHere = error instanceof KvError && error.reason === 'NOT_GRPC' && options.endpoints.length === 1;
        if (error instanceof KvError && (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED || notGrpcHere)) {
          throw connectionError(error, options);
        }
        throw error;
      } finally {
        client?.close();
      }
    };
}

/** A call no server answered, as one line naming the endpoints and what to do (connection-failure.ts). */
function connectionError(error: KvError, options: GlobalOptions): CliError {
  const { text, exitCode } = describeConnectionFailure(error, options);
  // Denied is not grpc-js's UNAVAILABLE, which would say that trying again may help.
  const reason = exitCode === EXIT.unavailable ? ` (${error.reason})` : '';
  return new CliError(`${options.endpoints.join(',')}: ${text}${reason}`, exitCode);
}
