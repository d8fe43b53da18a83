import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';
import { describeArgument } from './options-check';
import { isWellFormed } from './unicode-text';

/**
 * Refuses a key or prefix that is not text UTF-8 can carry, before it is
 * sent: the encoder would quietly turn a lone surrogate into U+FFFD, and
 * the call would then read or write another key. (Empty keys and sizes are
 * the server's to judge: its limits are its own.)
 */
export function assertKeyText(text: unknown, what: string): void {
  if (typeof text !== 'string') {
    throw new KvError(`${what} must be a string, got ${describeArgument(text)}`, status.INVALID_ARGUMENT, 'INVALID_KEY');
  }
  if (!isWellFormed(text)) {
    throw new KvError(
      `${what} ${JSON.stringify(text)} is not valid Unicode text (it has a lone surrogate)`,
      status.INVALID_ARGUMENT,
      'INVALID_KEY',
    );
  }
}
