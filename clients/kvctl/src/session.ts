import type { Command } from 'commander';
import { KvError, status, type KvClient } from '@kv/client';
import { CliError } from './cli-error';
import { confirm } from './confirm';
import { connect } from './connect';
import { EXIT, type ExitCode } from './exit-codes';
import { resolveGlobalOptions, type GlobalOptions } from './global-options';
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
      const options = resolveGlobalOptions(command.optsWithGlobals(), io.stdout.isTTY === true);
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
        if (error instanceof KvError && (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED)) {
          throw connectionError(error, options);
        }
        throw error;
      } finally {
        client?.close();
      }
    };
}

export const CERTIFICATE_REQUIRED = 'the server requires a client certificate (mutual TLS): give --tls-cert and --tls-key';

/** Whether a server refused the TLS handshake for want of a client certificate (OpenSSL's alert, in grpc-js's message). */
export function certificateRequired(error: KvError): boolean {
  return /alert certificate required/i.test(error.message);
}

/** Whether kvctl was asked to speak TLS. */
const usesTls = (options: GlobalOptions): boolean => options.tlsCa !== undefined || options.tlsCert !== undefined;

/**
 * A call no server answered, as one line naming the endpoints. Two causes
 * are said in kvctl's words rather than grpc-js's or OpenSSL's: a TLS
 * server refusing a connection that has no client certificate (denied,
 * exit 6: trying again will not help; so without grpc-js's UNAVAILABLE,
 * which would say otherwise), and plaintext to what may be a TLS server
 * (grpc-js only says "Failed to connect" when the handshake fails).
 */
function connectionError(error: KvError, options: GlobalOptions): CliError {
  const endpoints = options.endpoints.join(',');
  if (certificateRequired(error)) return new CliError(`${endpoints}: ${CERTIFICATE_REQUIRED}`, EXIT.denied);
  // grpc-js ends "Failed to connect" with a timestamp, which says nothing to a person.
  const message = error.message.replace(/^(no connection: Failed to connect) \([^)]*\)$/, '$1');
  const hint = !usesTls(options) && message !== error.message ? '; the server may require TLS: give --tls-ca' : '';
  return new CliError(`${endpoints}: ${message}${hint} (${error.reason})`, EXIT.unavailable);
}
