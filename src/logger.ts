import pino from 'pino';

/** The one logger of the process; layers take a Logger so tests can pass a silent one. */
export type Logger = pino.Logger;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * Log lines waiting for stderr to take them again: while it cannot (stderr
 * a file on a full disk, a pipe nobody reads any more), lines are kept up to
 * this many bytes and retried with the next line; past it, new lines are
 * dropped.
 */
const UNWRITTEN_LOG_BYTES = 1024 * 1024;

export function createLogger(level: LogLevel = 'info'): Logger {
  const destination = pino.destination({ dest: 2, sync: true, maxLength: UNWRITTEN_LOG_BYTES });
  // A log line that cannot be written must not stop the server: unheard, the error would be thrown from the
  // logging call, turning a disk-full error the store heals from into a crash (stderr is often on the data disk).
  destination.on('error', () => undefined);
  return pino({ level, base: undefined }, destination);
}

/**
 * The same for the server's own lines on stderr (the ready line's warnings,
 * the stop lines): a write error there is dropped, not an unhandled 'error'.
 */
export function ignoreStderrWriteErrors(): void {
  process.stderr.on('error', () => undefined);
}

export const silentLogger: Logger = pino({ level: 'silent' });
