import pino from 'pino';

/** The one logger of the process; layers take a Logger so tests can pass a silent one. */
export type Logger = pino.Logger;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
