import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';
import { isWellFormed } from './unicode-text';
import { DECODER_NESTING } from './wire/json-value';

/**
 * Refuses, before it is encoded, a value the SDK cannot send unchanged, in
 * one walk without recursion:
 *
 * - a string or object key that is not valid Unicode text: UTF-8 cannot
 *   carry a lone surrogate, and the encoder would quietly write U+FFFD;
 * - nesting deeper than any protobuf decoder reads (100 messages: an array
 *   level is two, an object level three): the encoder recurses once per
 *   level, and a value nested thousands deep would overflow the stack and
 *   fail as an INTERNAL error. (The server's own limit is lower, and its
 *   error names it.)
 */
export function assertJsonValue(value: unknown, what: string): void {
  const { budget, arrayLevel, objectLevel, tooDeep } = DECODER_NESTING;
  const pending: unknown[] = [value];
  const used: number[] = [1];
  while (pending.length > 0) {
    const item = pending.pop();
    const depth = used.pop() as number;
    if (typeof item === 'string') {
      if (!isWellFormed(item)) throw illFormed(what, 'a string', item);
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    let children: unknown[];
    if (Array.isArray(item)) children = item as unknown[];
    else {
      children = [];
      for (const key of Object.keys(item)) {
        if (!isWellFormed(key)) throw illFormed(what, 'an object key', key);
        children.push((item as Record<string, unknown>)[key]);
      }
    }
    const next = depth + (Array.isArray(item) ? arrayLevel : objectLevel);
    for (const child of children) {
      if (child === null || (typeof child !== 'object' && typeof child !== 'string')) continue;
      if (typeof child === 'object' && next > budget) {
        throw new KvError(`${what} is nested too deeply: ${tooDeep}`, status.INVALID_ARGUMENT, 'INVALID_VALUE');
      }
      pending.push(child);
      used.push(next);
    }
  }
}

function illFormed(what: string, where: string, text: string): KvError {
  // A value's string can be a megabyte: quote only a short one.
  const which = text.length <= 60 ? JSON.stringify(text) : `of ${text.length} characters`;
  return new KvError(
    `${what} has ${where} that is not valid Unicode text (it has a lone surrogate): ${which}`,
    status.INVALID_ARGUMENT,
    'INVALID_VALUE',
  );
}
