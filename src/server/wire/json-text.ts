/**
 * A Set request's google.protobuf.Value read straight into JSON text. The
 * store keeps JSON text; reading the value into JS objects only to
 * JSON.stringify them again was the largest part of kv's own work on a Set
 * (docs/benchmarks-set-path.md). Here the text is written byte by byte into
 * one buffer, the bytes of a string copied as they are when JSON needs no
 * escape in them.
 *
 * The text is exactly what JSON.stringify makes of the value the object
 * reader (readJsonValue) builds. Wherever the two could differ, or the value
 * breaks a rule, this reader gives up and the object reader reads the value
 * again, so its values and its errors stay the only ones:
 * - an object key that starts with a digit (JS objects put array-index keys
 *   first, whatever their order on the wire) or appears twice (the last value
 *   wins, at the first one's place); a map entry that is not key then value;
 * - a number that is not finite (NaN, ±Infinity: the store says why);
 * - nesting past the rule, a map entry or list item without a value;
 * - a value whose text passes MAX_TEXT_BYTES (the buffer stays small).
 * test/server/json-text.test.ts checks the equality on random values.
 */
import { type BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { type JsonValue, type NestingRule, nextField1, readJsonValue } from '@kv/client/wire';
import { JsonText } from '../../store/value-rules';

// Plain constants: each `WireType.X` is a getter call on the CommonJS build of @bufbuild/protobuf.
const VARINT = WireType.Varint;
const BIT64 = WireType.Bit64;
const LEN = WireType.LengthDelimited;
const KEY_TAG = (1 << 3) | LEN;
const VALUE_TAG = (2 << 3) | LEN;

/** Larger values take the object reader (they are rare, and the buffer is kept between calls). */
const MAX_TEXT_BYTES = 64 * 1024;

const enum Read {
  /** The Value set no kind. */
  None,
  Wrote,
  GiveUp,
}

/** The text being written; one call at a time (the decoder is synchronous). */
let out = Buffer.allocUnsafeSlow(4096);
let at = 0;
/** Whether every byte written so far is ASCII (the text is then read back as latin1, the cheaper decode). */
let ascii = true;

/** A Value message of `length` bytes as JSON text if it can be, else as readJsonValue reads it; undefined if it sets no kind. */
export function readValueText(reader: BinaryReader, length: number, rule: NestingRule): JsonText | JsonValue | undefined {
  const start = reader.pos;
  at = 0;
  ascii = true;
  const read = valueText(reader, length, rule, rule.budget);
  if (read === Read.None) return undefined;
  if (read === Read.Wrote) return new JsonText(out.toString(ascii ? 'latin1' : 'utf8', 0, at));
  reader.pos = start;
  return readJsonValue(reader, length, rule);
}

function valueText(reader: BinaryReader, length: number, rule: NestingRule, budget: number): Read {
  if (budget < 1) return Read.GiveUp;
  const end = reader.pos + length;
  // A later kind replaces an earlier one, as in the object reader.
  const from = at;
  let read = Read.None;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 1 && wireType === VARINT) {
      reader.int32();
      at = from;
      writeAscii('null');
    } else if (field === 2 && wireType === BIT64) {
      const n = reader.double();
      if (!Number.isFinite(n)) return Read.GiveUp;
      at = from;
      // JSON.stringify writes a finite number as String does (-0 as "0").
      writeAscii(String(n));
    } else if (field === 3 && wireType === LEN) {
      at = from;
      if (!writeString(reader)) return Read.GiveUp;
    } else if (field === 4 && wireType === VARINT) {
      const b = reader.bool();
      at = from;
      writeAscii(b ? 'true' : 'false');
    } else if (field === 5 && wireType === LEN) {
      at = from;
      if (structText(reader, reader.uint32(), rule, budget) === Read.GiveUp) return Read.GiveUp;
    } else if (field === 6 && wireType === LEN) {
      at = from;
      if (listText(reader, reader.uint32(), rule, budget) === Read.GiveUp) return Read.GiveUp;
    } else {
      reader.skip(wireType, field);
      continue;
    }
    if (at > MAX_TEXT_BYTES) return Read.GiveUp;
    read = Read.Wrote;
  }
  return read;
}

function structText(reader: BinaryReader, length: number, rule: NestingRule, budget: number): Read {
  const end = reader.pos + length;
  const keys = new Set<string>();
  writeByte(0x7b); // {
  for (let entryLength = nextField1(reader, end); entryLength !== undefined; entryLength = nextField1(reader, end)) {
    const entryEnd = reader.pos + entryLength;
    // The usual layout only: the key, then the value, nothing else.
    if (reader.pos >= entryEnd || reader.uint32() !== KEY_TAG) return Read.GiveUp;
    const keyAt = reader.pos;
    const key = reader.string();
    const first = key.charCodeAt(0);
    if ((first >= 0x30 && first <= 0x39) || keys.has(key)) return Read.GiveUp;
    if (keys.size > 0) writeByte(0x2c); // ,
    keys.add(key);
    reader.pos = keyAt;
    if (!writeString(reader)) return Read.GiveUp;
    writeByte(0x3a); // :
    if (reader.pos >= entryEnd || reader.uint32() !== VALUE_TAG) return Read.GiveUp;
    const valueLength = reader.uint32();
    if (reader.pos + valueLength !== entryEnd) return Read.GiveUp;
    if (valueText(reader, valueLength, rule, budget - rule.objectLevel) !== Read.Wrote) return Read.GiveUp;
  }
  writeByte(0x7d); // }
  return Read.Wrote;
}

function listText(reader: BinaryReader, length: number, rule: NestingRule, budget: number): Read {
  const end = reader.pos + length;
  let items = 0;
  writeByte(0x5b); // [
  for (let itemLength = nextField1(reader, end); itemLength !== undefined; itemLength = nextField1(reader, end)) {
    if (items++ > 0) writeByte(0x2c); // ,
    if (valueText(reader, itemLength, rule, budget - rule.arrayLevel) !== Read.Wrote) return Read.GiveUp;
  }
  writeByte(0x5d); // ]
  return Read.Wrote;
}

/**
 * A string field (its length, then its bytes) as a JSON string: the bytes
 * copied between quotes when they are printable ASCII other than `"` and `\`
 * (JSON.stringify would write them the same), else decoded (strictly, as the
 * reader decodes every string) and written as JSON.stringify writes it.
 * False for a string too long for the buffer.
 */
function writeString(reader: BinaryReader): boolean {
  const lengthAt = reader.pos;
  const length = reader.uint32();
  if (length > MAX_TEXT_BYTES) return false;
  const start = reader.pos;
  const from = bytesOf(reader);
  if (from !== undefined && start + length <= reader.len) {
    ensure(length + 2);
    const to = out;
    const shift = at + 1 - start;
    const end = start + length;
    let i = start;
    for (; i < end; i++) {
      const b = from[i];
      if (b < 0x20 || b > 0x7e || b === 0x22 || b === 0x5c) break;
      to[i + shift] = b;
    }
    if (i === end) {
      to[at] = 0x22;
      to[end + shift] = 0x22;
      at += length + 2;
      reader.pos = end;
      return true;
    }
  }
  // Escapes or other than ASCII: decoded by the reader (strictly, as it decodes every string; it also checks the bounds).
  reader.pos = lengthAt;
  const text = JSON.stringify(reader.string());
  ensure(3 * text.length);
  const written = out.write(text, at, 'utf8');
  if (written !== text.length) ascii = false;
  at += written;
  return true;
}

/**
 * The bytes the reader reads. BinaryReader keeps them in a field its types
 * call private; reader.bytes() would make a view per string, which cost more
 * than the rest of the copy. Undefined (every string then decoded by the
 * reader) if a version of @bufbuild/protobuf keeps them otherwise.
 */
function bytesOf(reader: BinaryReader): Uint8Array | undefined {
  const buf = (reader as unknown as { buf?: unknown }).buf;
  return buf instanceof Uint8Array ? buf : undefined;
}

function writeAscii(text: string): void {
  ensure(text.length);
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  at += text.length;
}

function writeByte(byte: number): void {
  ensure(1);
  out[at++] = byte;
}

function ensure(bytes: number): void {
  if (at + bytes <= out.length) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(2 * out.length, at + bytes));
  out.copy(grown, 0, 0, at);
  out = grown;
}
