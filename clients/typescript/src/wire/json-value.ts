/**
 * JSON <-> google.protobuf.Value on the wire, the one place that knows the
 * layout (google/protobuf/struct.proto), shared by the SDK (reading
 * responses) and the server (reading requests, writing responses):
 *
 *   Value{ null_value=1 varint, number_value=2 double, string_value=3 string, bool_value=4 varint,
 *          struct_value=5 Struct{ fields=1 repeated entry{ key=1 string, value=2 Value } },
 *          list_value=6 ListValue{ values=1 repeated Value } }
 *
 * The generated codec builds Value/Struct/ListValue objects and then unwraps
 * them, and assigns Struct fields with `obj[key] = ...`, so a field named
 * `__proto__` silently set a prototype instead of being kept. Here every
 * field is an own property, a malformed value (a map entry or list item
 * without a value, nesting no client could decode back) is an error, never
 * something quietly dropped, and encoding writes straight into one buffer.
 */
import { type BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { fieldSize, type ProtoWriter, writeTagAndLength } from './proto-writer';

// The wire types as plain constants: each `WireType.X` is a getter call on the CommonJS build of @bufbuild/protobuf.
const VARINT = WireType.Varint;
const BIT64 = WireType.Bit64;
const LEN = WireType.LengthDelimited;

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A value that is not a well-formed google.protobuf.Value (a map entry or list item without a value, or nested too deeply). */
export class MalformedValueError extends Error {}

/**
 * How deep a value may nest, in protobuf messages: `budget` for the whole
 * value (its own Value message counts one), an array level costs
 * `arrayLevel` more (ListValue, item Value), an object level `objectLevel`
 * (Struct, map entry, field Value). `tooDeep` says why, for the error.
 */
export interface NestingRule {
  budget: number;
  arrayLevel: number;
  objectLevel: number;
  tooDeep: string;
}

/** What the SDK reads back: anything a protobuf decoder would accept (100 nested messages). */
export const DECODER_NESTING: NestingRule = { budget: 100, arrayLevel: 2, objectLevel: 3, tooDeep: 'more than 100 nested messages' };

/**
 * Reads a Value message of `length` bytes, nested at most as `rule` allows.
 * Returns undefined if it sets no kind: the caller decides whether that is a
 * missing value or a malformed one.
 */
export function readJsonValue(
  reader: BinaryReader,
  length: number,
  rule: NestingRule = DECODER_NESTING,
  budget: number = rule.budget,
): JsonValue | undefined {
  if (budget < 1) throw new MalformedValueError(`value is nested too deeply: ${rule.tooDeep}`);
  const end = reader.pos + length;
  let value: JsonValue | undefined;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (field === 1 && wireType === VARINT) {
      reader.int32();
      value = null;
    } else if (field === 2 && wireType === BIT64) value = reader.double();
    else if (field === 3 && wireType === LEN) value = reader.string();
    else if (field === 4 && wireType === VARINT) value = reader.bool();
    else if (field === 5 && wireType === LEN) value = readStruct(reader, reader.uint32(), rule, budget);
    else if (field === 6 && wireType === LEN) value = readList(reader, reader.uint32(), rule, budget);
    else reader.skip(wireType, field);
  }
  return value;
}

function readStruct(reader: BinaryReader, length: number, rule: NestingRule, budget: number): { [key: string]: JsonValue } {
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
      if (entryField === 1 && entryWireType === LEN) key = reader.string();
      else if (entryField === 2 && entryWireType === LEN) {
        value = readJsonValue(reader, reader.uint32(), rule, budget - rule.objectLevel);
      } else reader.skip(entryWireType, entryField);
    }
    if (value === undefined) throw new MalformedValueError(`object field ${JSON.stringify(key)} has no value`);
    setOwnField(object, key, value);
  }
  return object;
}

function readList(reader: BinaryReader, length: number, rule: NestingRule, budget: number): JsonValue[] {
  const end = reader.pos + length;
  const list: JsonValue[] = [];
  for (let itemLength = nextField1(reader, end); itemLength !== undefined; itemLength = nextField1(reader, end)) {
    const item = readJsonValue(reader, itemLength, rule, budget - rule.arrayLevel);
    if (item === undefined) throw new MalformedValueError(`list item ${list.length} has no value`);
    list.push(item);
  }
  return list;
}

/** "__proto__" is a field name like any other; assigning it would set the prototype. */
export function setOwnField(object: { [key: string]: JsonValue }, key: string, value: JsonValue): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  else object[key] = value;
}

/**
 * Struct and ListValue hold one repeated message field (number 1): the length
 * of its next occurrence before `end`, skipping any other field, or undefined.
 */
export function nextField1(reader: BinaryReader, end: number): number | undefined {
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | LEN)) return reader.uint32();
    reader.skip(tag & 7, tag >>> 3);
  }
  return undefined;
}

/**
 * Measure pass: returns the size of v's Value message body and records, in
 * pre-order: that size, then for a string its UTF-8 length, for a list its
 * body size, for a struct its body size and per field the key length and
 * entry size.
 */
export function measureJsonValue(v: JsonValue, sizes: number[]): number {
  const at = sizes.push(0) - 1;
  let size: number;
  if (v === null || typeof v === 'boolean') {
    size = 2;
  } else if (typeof v === 'number') {
    size = 9;
  } else if (typeof v === 'string') {
    const bytes = Buffer.byteLength(v, 'utf8');
    sizes.push(bytes);
    size = fieldSize(bytes);
  } else if (Array.isArray(v)) {
    const listAt = sizes.push(0) - 1;
    let list = 0;
    for (const item of v) list += fieldSize(measureJsonValue(item, sizes));
    sizes[listAt] = list;
    size = fieldSize(list);
  } else {
    const structAt = sizes.push(0) - 1;
    let struct = 0;
    for (const key of Object.keys(v)) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      sizes.push(keyBytes);
      const entryAt = sizes.push(0) - 1;
      const entry = fieldSize(keyBytes) + fieldSize(measureJsonValue(v[key], sizes));
      sizes[entryAt] = entry;
      struct += fieldSize(entry);
    }
    sizes[structAt] = struct;
    size = fieldSize(struct);
  }
  sizes[at] = size;
  return size;
}

/** Write pass: the body of v's Value message (its tag and length are the caller's, from the size measured). */
export function writeJsonValue(w: ProtoWriter, v: JsonValue): void {
  w.next++; // this Value's own size, already written by the parent as its length
  if (v === null) {
    w.buf[w.pos++] = 0x08;
    w.buf[w.pos++] = 0;
  } else if (typeof v === 'boolean') {
    w.buf[w.pos++] = 0x20;
    w.buf[w.pos++] = v ? 1 : 0;
  } else if (typeof v === 'number') {
    w.buf[w.pos++] = 0x11;
    w.pos = w.buf.writeDoubleLE(v, w.pos);
  } else if (typeof v === 'string') {
    writeTagAndLength(w, 0x1a, w.sizes[w.next++]);
    w.pos += w.buf.write(v, w.pos, 'utf8');
  } else if (Array.isArray(v)) {
    writeTagAndLength(w, 0x32, w.sizes[w.next++]);
    for (const item of v) {
      writeTagAndLength(w, 0x0a, w.sizes[w.next]);
      writeJsonValue(w, item);
    }
  } else {
    writeTagAndLength(w, 0x2a, w.sizes[w.next++]);
    for (const key of Object.keys(v)) {
      const keyBytes = w.sizes[w.next++];
      writeTagAndLength(w, 0x0a, w.sizes[w.next++]);
      writeTagAndLength(w, 0x0a, keyBytes);
      w.pos += w.buf.write(key, w.pos, 'utf8');
      writeTagAndLength(w, 0x12, w.sizes[w.next]);
      writeJsonValue(w, v[key]);
    }
  }
}
