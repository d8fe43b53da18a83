/**
 * What a value may be, in one place: any JSON value (no NaN, no infinite
 * number, nothing JSON cannot say), at most maxValueBytes once JSON-encoded,
 * and nested no deeper than every client can decode back.
 *
 * The nesting rule comes from the wire: values travel as
 * google.protobuf.Value, and protobuf decoders (ts-proto's runtime, Python's,
 * Go's default) stop at 100 nested messages. A Value uses one message for a
 * scalar, two more per array level (ListValue, item Value) and three more per
 * object level (Struct, map entry, field Value). A value may use at most
 * MAX_VALUE_MESSAGES of them, which leaves room for the value to sit six
 * messages deep in any response (a Txn result: TxnResponse, ResponseOp,
 * GetResponse, Entry, Value) and still decode: about 31 levels of objects or
 * 46 of arrays. The server's request decoder stops at the same budget, so
 * nothing deeper is ever built in memory.
 *
 * JSON has no -0: it is stored (and read back) as 0.
 */
import { InvalidValueError, TooLargeError } from './errors';
import type { JsonValue } from './key-value-store';

/** Nested protobuf messages a value may use, its own Value included. */
export const MAX_VALUE_MESSAGES = 94;
/** Messages an array level adds (ListValue, then the item's Value). */
export const ARRAY_LEVEL_MESSAGES = 2;
/** Messages an object level adds (Struct, map entry, then the field's Value). */
export const OBJECT_LEVEL_MESSAGES = 3;

export const NESTING_LIMIT_TEXT =
  'clients decode at most 100 nested protobuf messages, so a value nests at most about 31 levels of objects or 46 of arrays';

/** The same rule for the server's request decoder, which stops reading a value that breaks it. */
export const VALUE_NESTING = {
  budget: MAX_VALUE_MESSAGES,
  arrayLevel: ARRAY_LEVEL_MESSAGES,
  objectLevel: OBJECT_LEVEL_MESSAGES,
  tooDeep: NESTING_LIMIT_TEXT,
};

/**
 * A value that arrives as JSON text already, from a reader that checked it
 * against every rule here but its size: the server's request decoder
 * (src/server/wire/json-text.ts), whose text is exactly what JSON.stringify
 * makes of the value it stands for. encodeValue then only measures it.
 */
export class JsonText {
  constructor(readonly json: string) {}
}

/**
 * Checks a value against the rules and returns its JSON text and UTF-8 size.
 * JSON.stringify alone would quietly turn NaN into null and drop undefined
 * object members, so the value is walked first.
 */
export function encodeValue(
  key: string,
  value: JsonValue | JsonText,
  maxValueBytes: number,
  what: 'value' | 'patch' | 'patched' = 'value',
): { json: string; size: number } {
  if (value instanceof JsonText) {
    const size = Buffer.byteLength(value.json, 'utf8');
    if (size > maxValueBytes) throw new TooLargeError(what, size, maxValueBytes, key);
    return { json: value.json, size };
  }
  const problem = findProblem(value, MAX_VALUE_MESSAGES);
  if (problem !== undefined)
    throw new InvalidValueError(`${what === 'patched' ? 'the patched value' : what} for key ${JSON.stringify(key)} ${problem}`);
  const json = JSON.stringify(value);
  const size = Buffer.byteLength(json, 'utf8');
  if (size > maxValueBytes) throw new TooLargeError(what, size, maxValueBytes, key);
  return { json, size };
}

/** Why `value` breaks a rule ("is not JSON: ...", "is nested too deeply: ..."), with `budget` messages left; undefined if it does not. */
function findProblem(value: unknown, budget: number): string | undefined {
  if (budget < 1) return `is nested too deeply: ${NESTING_LIMIT_TEXT}`;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `is not JSON: ${value} is not a JSON number`;
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (const item of value) {
          const p = findProblem(item, budget - ARRAY_LEVEL_MESSAGES);
          if (p !== undefined) return p;
        }
        return undefined;
      }
      for (const k of Object.keys(value)) {
        const p = findProblem((value as Record<string, unknown>)[k], budget - OBJECT_LEVEL_MESSAGES);
        if (p !== undefined) return p.startsWith('is not JSON: ') ? `is not JSON: member ${JSON.stringify(k)}: ${p.slice(13)}` : p;
      }
      return undefined;
    }
    default:
      return `is not JSON: ${typeof value} is not a JSON value`;
  }
}
