/**
 * A JSON request body (application/json, connect+json, grpc-web+json),
 * checked before protobuf-es reads it: connect-node hands protobuf-es the
 * text that its JSON serialization's textDecoder returns, and each method
 * gets a decoder of its own (jsonRequestOptions), which knows the request
 * message. What would not be read as sent is refused (INVALID_ARGUMENT),
 * in one line naming the field as it was written and its value:
 *
 * - bytes that are not UTF-8 (never U+FFFD in their place);
 * - a number JSON.parse would round (@kv/client/wire);
 * - a body that is not a JSON object, a field the message does not have,
 *   one field given twice (by its JSON and proto names), two members of a
 *   oneof, and a value of the wrong JSON kind for its field;
 * - an integer field (int64 and uint64, such as a revision, a lease id or
 *   ttl_ms, and the 32-bit ones) that is not a JSON number without a
 *   fraction, or a string of decimal digits with an optional '-' (proto3
 *   JSON), or is out of its type's range. protobuf-es reads an int64 string
 *   with BigInt(), which also takes "0x0f", "0b10001", "+5" and " 15", and
 *   reads "", " " and "\t" as 0: a create-only compare-and-set.
 *
 * Every field of every message is checked as its descriptor says; the
 * well-known types (a google.protobuf.Value is any JSON) are left to
 * protobuf-es, as are base64 and floating-point strings (kv.v1 requests
 * have neither).
 */
import { type DescEnum, type DescField, type DescMessage, type DescOneof, ScalarType } from '@bufbuild/protobuf';
import type { ConnectRouterOptions } from '@connectrpc/connect';
import { roundedNumberIn } from '@kv/client/wire';
import { InvalidArgumentError } from '../service-errors';

/** connect-node's JSON options, with the textDecoder its JSON serialization takes (createJsonSerialization), which its types leave out. */
export type JsonRequestOptions = ConnectRouterOptions['jsonOptions'] & { textDecoder: { decode(bytes: Uint8Array): string } };

/** The JSON options for requests of `schema`. */
export function jsonRequestOptions(schema: DescMessage): JsonRequestOptions {
  return {
    textDecoder: { decode: (bytes) => checkedJsonText(schema, bytes) },
    // A misspelt field ("expected_revison") must not turn a compare-and-set into a plain write.
    ignoreUnknownFields: false,
  };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Deeper than any kv.v1 request nests its own messages: past it, protobuf-es checks alone (and has its own depth limit). */
const MAX_DEPTH = 32;

function refused(problem: string): InvalidArgumentError {
  return new InvalidArgumentError(`request could not be decoded: ${problem}`);
}

function checkedJsonText(schema: DescMessage, bytes: Uint8Array): string {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw refused('the body is not valid UTF-8');
  }
  const rounded = roundedNumberIn(text);
  if (rounded !== undefined) {
    throw refused(
      `the JSON ${rounded}; in a value, send such a number as a string (an int64 field, a revision, a lease id or ttl_ms, takes at most 2^53 - 1 however it is sent)`,
    );
  }
  const fields = `a JSON object of ${schema.typeName}'s fields`;
  if (text.trim() === '') throw refused(`the body is empty: send ${fields} ({} for none)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw refused(`the body is not JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw refused(`the body must be ${fields}, not ${shown(json)}`);
  checkMessage(schema, json, '', 0);
  return text;
}

function checkMessage(desc: DescMessage, json: Record<string, unknown>, path: string, depth: number): void {
  const byKey = fieldsByKey(desc);
  const given = new Map<DescField, string>();
  const chosen = new Map<DescOneof, string>();
  for (const [key, value] of Object.entries(json)) {
    const at = path === '' ? key : `${path}.${key}`;
    const field = byKey.get(key);
    if (field === undefined) throw refused(`${desc.typeName} has no field "${key}"${path === '' ? '' : ` (at ${at})`}`);
    const twice = given.get(field);
    if (twice !== undefined) throw refused(`${at} is given twice (as "${twice}" and "${key}")`);
    given.set(field, key);
    // A oneof's member counts as given even if null, unless it is a scalar (as protobuf-es counts them).
    if (field.oneof !== undefined && (value !== null || field.fieldKind !== 'scalar')) {
      const other = chosen.get(field.oneof);
      if (other !== undefined) throw refused(`${other} and ${at} are both given, and only one of them may be`);
      chosen.set(field.oneof, at);
    }
    // null is a field not set, but for a google.protobuf.Value (JSON's null).
    if (value === null && !isValueField(field)) continue;
    checkField(field, value, at, depth);
  }
}

function checkField(field: DescField, value: unknown, at: string, depth: number): void {
  switch (field.fieldKind) {
    case 'scalar':
      return checkScalar(field.scalar, value, at);
    case 'enum':
      return checkEnum(field.enum, value, at);
    case 'message':
      return checkMessageValue(field.message, value, at, depth);
    case 'list': {
      if (!Array.isArray(value)) throw refused(`${at} must be an array, not ${shown(value)}`);
      value.forEach((item: unknown, index) => {
        const itemAt = `${at}[${index}]`;
        if (field.listKind === 'message' && field.message.typeName === 'google.protobuf.Value') return;
        if (item === null) throw refused(`${itemAt} must not be null`);
        if (field.listKind === 'scalar') checkScalar(field.scalar, item, itemAt);
        else if (field.listKind === 'enum') checkEnum(field.enum, item, itemAt);
        else checkMessageValue(field.message, item, itemAt, depth);
      });
      return;
    }
    case 'map': {
      if (!isObject(value)) throw refused(`${at} must be an object, not ${shown(value)}`);
      for (const [key, item] of Object.entries(value)) {
        const itemAt = `${at}[${JSON.stringify(key)}]`;
        if (INTEGER_RANGES.has(field.mapKey)) checkScalar(field.mapKey, key, `${itemAt}'s key`);
        if (field.mapKind === 'message' && field.message.typeName === 'google.protobuf.Value') continue;
        if (item === null) throw refused(`${itemAt} must not be null`);
        if (field.mapKind === 'scalar') checkScalar(field.scalar, item, itemAt);
        else if (field.mapKind === 'enum') checkEnum(field.enum, item, itemAt);
        else checkMessageValue(field.message, item, itemAt, depth);
      }
      return;
    }
  }
}

function checkMessageValue(desc: DescMessage, value: unknown, at: string, depth: number): void {
  // The well-known types have JSON forms of their own (a Value is any JSON, a Timestamp a string): protobuf-es reads them.
  if (desc.typeName.startsWith('google.protobuf.')) return;
  if (!isObject(value)) throw refused(`${at} must be an object (${desc.typeName}), not ${shown(value)}`);
  if (depth < MAX_DEPTH) checkMessage(desc, value, at, depth + 1);
}

function checkEnum(desc: DescEnum, value: unknown, at: string): void {
  if (typeof value === 'number' && Number.isInteger(value)) return; // which numbers are valid is the handlers' to say
  if (typeof value === 'string' && desc.values.some((known) => known.name === value || known.jsonName === value)) return;
  const names = desc.values.map((known) => known.name).join(', ');
  throw refused(`${at} must be one of ${names} (or its number), not ${shown(value)}`);
}

/** Each integer type's range, and its name in messages. */
const INTEGER_RANGES = new Map<ScalarType, [name: string, min: bigint, max: bigint]>([
  [ScalarType.INT64, ['an int64', -(2n ** 63n), 2n ** 63n - 1n]],
  [ScalarType.SINT64, ['an int64', -(2n ** 63n), 2n ** 63n - 1n]],
  [ScalarType.SFIXED64, ['an int64', -(2n ** 63n), 2n ** 63n - 1n]],
  [ScalarType.UINT64, ['a uint64', 0n, 2n ** 64n - 1n]],
  [ScalarType.FIXED64, ['a uint64', 0n, 2n ** 64n - 1n]],
  [ScalarType.INT32, ['an int32', -(2n ** 31n), 2n ** 31n - 1n]],
  [ScalarType.SINT32, ['an int32', -(2n ** 31n), 2n ** 31n - 1n]],
  [ScalarType.SFIXED32, ['an int32', -(2n ** 31n), 2n ** 31n - 1n]],
  [ScalarType.UINT32, ['a uint32', 0n, 2n ** 32n - 1n]],
  [ScalarType.FIXED32, ['a uint32', 0n, 2n ** 32n - 1n]],
]);

/** proto3 JSON's integer string: decimal digits, an optional '-' before them, nothing else. */
const DECIMAL_INTEGER = /^-?[0-9]+$/;

function checkScalar(type: ScalarType, value: unknown, at: string): void {
  const range = INTEGER_RANGES.get(type);
  if (range !== undefined) {
    const [name, min, max] = range;
    const integer = typeof value === 'number' ? Number.isInteger(value) : typeof value === 'string' && DECIMAL_INTEGER.test(value);
    if (!integer) throw refused(`${at} must be an integer (a JSON number, or a string of decimal digits), not ${shown(value)}`);
    const n = BigInt(value as number | string);
    if (n < min || n > max) throw refused(`${at} is out of range for ${name}: ${shown(value)}`);
    return;
  }
  switch (type) {
    case ScalarType.STRING:
      if (typeof value !== 'string') throw refused(`${at} must be a string, not ${shown(value)}`);
      return;
    case ScalarType.BYTES:
      if (typeof value !== 'string') throw refused(`${at} must be a base64 string, not ${shown(value)}`);
      return;
    case ScalarType.BOOL:
      if (typeof value !== 'boolean') throw refused(`${at} must be true or false, not ${shown(value)}`);
      return;
    default: // DOUBLE, FLOAT: a number, or a string of one ("NaN", "Infinity", "1.5"), which protobuf-es reads
      if (typeof value !== 'number' && typeof value !== 'string') throw refused(`${at} must be a number, not ${shown(value)}`);
  }
}

function isValueField(field: DescField): boolean {
  return field.fieldKind === 'message' && field.message.typeName === 'google.protobuf.Value';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON value as a message shows it: a string quoted (and cut short), a number or literal as it is, else its kind. */
function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return JSON.stringify(value); // a number or a boolean, as JSON.parse read it
}

const fieldKeys = new WeakMap<DescMessage, Map<string, DescField>>();

/** A message's fields by the keys JSON may give them: the JSON name and the proto name (protobuf-es reads both). */
function fieldsByKey(desc: DescMessage): Map<string, DescField> {
  let byKey = fieldKeys.get(desc);
  if (byKey === undefined) {
    byKey = new Map();
    for (const field of desc.fields) byKey.set(field.name, field).set(field.jsonName, field);
    fieldKeys.set(desc, byKey);
  }
  return byKey;
}
