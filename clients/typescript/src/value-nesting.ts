import { status } from '@grpc/grpc-js';
import { KvError } from './kv-error';
import { DECODER_NESTING } from './wire/json-value';

/**
 * Refuses a value nested deeper than any protobuf decoder reads (100
 * messages: an array level is two, an object level three), before it is
 * encoded: the encoder recurses once per level, and a value nested
 * thousands deep would overflow the stack and fail as an INTERNAL error.
 * (The server's own limit is lower, and its error names it.) Walks the
 * value without recursion.
 */
export function assertNotTooDeep(value: unknown, what: string): void {
  const { budget, arrayLevel, objectLevel, tooDeep } = DECODER_NESTING;
  const pending: unknown[] = [value];
  const used: number[] = [1];
  while (pending.length > 0) {
    const item = pending.pop();
    const depth = used.pop() as number;
    if (item === null || typeof item !== 'object') continue;
    const children = Array.isArray(item) ? (item as unknown[]) : Object.values(item);
    const next = depth + (Array.isArray(item) ? arrayLevel : objectLevel);
    for (const child of children) {
      if (child === null || typeof child !== 'object') continue;
      if (next > budget) throw new KvError(`${what} is nested too deeply: ${tooDeep}`, status.INVALID_ARGUMENT, 'INVALID_VALUE');
      pending.push(child);
      used.push(next);
    }
  }
}
