import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { SetRequest } from '../gen/kv/v1/kv';
import type { JsonValue } from '../store/key-value-store';
import { InvalidArgumentError } from './service-errors';

/**
 * Protobuf decoders (ts-proto's runtime, Python's) stop at 100 nested
 * messages. A value is refused unless every client can read it back: in a
 * GetResponse the value sits at message depth 3, each JSON object level adds
 * 3 (Struct, map entry, Value) and each array level 2 (ListValue, Value) —
 * about 32 levels of objects or 48 of arrays.
 */
const MAX_MESSAGE_DEPTH = 99;
const VALUE_DEPTH_IN_GET_RESPONSE = 3;

/**
 * Decodes a SetRequest straight into plain JSON, the Set hot path. The
 * generated decoder first builds google.protobuf.Value/Struct/ListValue
 * objects and then unwraps them; it also assigns Struct fields with `obj[key]
 * = ...`, so a field named `__proto__` silently set the prototype instead of
 * being stored. Here every field is an own property, and a malformed value
 * (a map entry without a value, nesting no client could decode, an int64 past
 * 2^53) is an InvalidArgumentError, never something quietly dropped.
 *
 * Wire layout: SetRequest{ key=1 string, value=2 Value, expected_revision=3 int64 };
 * Value{ null_value=1, number_value=2 double, string_value=3, bool_value=4,
 * struct_value=5 Struct{ fields=1 entry{ key=1, value=2 } }, list_value=6 ListValue{ values=1 } }.
 */
export function decodeSetRequest(input: BinaryReader | Uint8Array): SetRequest {
  const reader = input instanceof BinaryReader ? input : new BinaryReader(input);
  const request: SetRequest = { key: '', value: undefined, expectedRevision: undefined };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (field === 1 && wireType === WireType.LengthDelimited) request.key = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited)
      request.value = readValue(reader, reader.uint32(), VALUE_DEPTH_IN_GET_RESPONSE);
    else if (field === 3 && wireType === WireType.Varint) request.expectedRevision = toSafeNumber(reader.int64(), 'expected_revision');
    else reader.skip(wireType, field);
  }
  return request;
}

/** A Value message of `length` bytes at message depth `depth`; undefined if it sets no kind (which the service and the store reject). */
function readValue(reader: BinaryReader, length: number, depth: number): JsonValue | undefined {
  if (depth > MAX_MESSAGE_DEPTH) {
    throw new InvalidArgumentError(
      'value is nested too deeply: clients decode at most 100 nested protobuf messages (about 32 levels of objects or 48 of arrays)',
    );
  }
  const end = reader.pos + length;
  let value: JsonValue | undefined;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (field === 1 && wireType === WireType.Varint) {
      reader.int32();
      value = null;
    } else if (field === 2 && wireType === WireType.Bit64) value = reader.double();
    else if (field === 3 && wireType === WireType.LengthDelimited) value = reader.string();
    else if (field === 4 && wireType === WireType.Varint) value = reader.bool();
    else if (field === 5 && wireType === WireType.LengthDelimited) value = readStruct(reader, reader.uint32(), depth);
    else if (field === 6 && wireType === WireType.LengthDelimited) value = readList(reader, reader.uint32(), depth);
    else reader.skip(wireType, field);
  }
  return value;
}

function readStruct(reader: BinaryReader, length: number, depth: number): { [key: string]: JsonValue } {
  const end = reader.pos + length;
  const object: { [key: string]: JsonValue } = {};
  for (let entryLength = nextField1(reader, end); entryLength !== undefined; entryLength = nextField1(reader, end)) {
    const entryEnd = reader.pos + entryLength;
    let key = '';
    let value: JsonValue | undefined;
    while (reader.pos < entryEnd) {
      const entryTag = reader.uint32();
      const entryField = entryTag >>> 3;
      const entryWireType: WireType = entryTag & 7;
      if (entryField === 1 && entryWireType === WireType.LengthDelimited) key = reader.string();
      else if (entryField === 2 && entryWireType === WireType.LengthDelimited) value = readValue(reader, reader.uint32(), depth + 3);
      else reader.skip(entryWireType, entryField);
    }
    if (value === undefined) throw new InvalidArgumentError(`object field ${JSON.stringify(key)} has no value`);
    // "__proto__" is a field name like any other; assigning it would set the prototype.
    if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    else object[key] = value;
  }
  return object;
}

function readList(reader: BinaryReader, length: number, depth: number): JsonValue[] {
  const end = reader.pos + length;
  const list: JsonValue[] = [];
  for (let itemLength = nextField1(reader, end); itemLength !== undefined; itemLength = nextField1(reader, end)) {
    const item = readValue(reader, itemLength, depth + 2);
    if (item === undefined) throw new InvalidArgumentError(`list item ${list.length} has no value`);
    list.push(item);
  }
  return list;
}

/**
 * Struct and ListValue hold one repeated message field (number 1): the length
 * of its next occurrence before `end`, skipping any other field, or undefined.
 */
function nextField1(reader: BinaryReader, end: number): number | undefined {
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | WireType.LengthDelimited)) return reader.uint32();
    reader.skip(tag & 7, tag >>> 3);
  }
  return undefined;
}

function toSafeNumber(int64: bigint | string, field: string): number {
  const n = Number(int64);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field} ${String(int64)} is outside ±(2^53 - 1)`);
  return n;
}
