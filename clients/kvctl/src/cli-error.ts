import { EXIT, type ExitCode } from './exit-codes';

/** A failure kvctl explains itself: printed as one line, exits with its code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.usage,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
