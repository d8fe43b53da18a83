import type { GetResponse } from '../gen/kv/v1/kv';
import type { JsonValue } from '../store/key-value-store';

/**
 * Encodes a GetResponse in two passes over the value: sizes first, then the
 * bytes into one buffer. It is the Get hot path: the generated encoder first
 * wraps the JSON into google.protobuf.Value objects and then encodes each
 * nested message into a buffer of its own, which profiling showed as most of
 * the protobuf cost of a Get. The bytes decode to the same message (tested
 * against the generated decoder in test/server/encode-get-response.test.ts).
 *
 * Wire layout (proto/kv/v1/kv.proto, google/protobuf/struct.proto):
 *   GetResponse.entry=1  Entry{ key=1, value=2, create_revision=3, mod_revision=4, version=5 }
 *   Value{ null_value=1 varint, number_value=2 double, string_value=3, bool_value=4,
 *          struct_value=5 Struct{ fields=1 map entry{ key=1, value=2 } }, list_value=6 ListValue{ values=1 } }
 */
export function encodeGetResponse(response: GetResponse): Buffer {
  const entry = response.entry;
  if (entry === undefined) return Buffer.alloc(0);
  const sizes: number[] = [];
  const keyBytes = Buffer.byteLength(entry.key, 'utf8');
  const valueSize = measure(entry.value as JsonValue, sizes);
  const entrySize =
    fieldSize(keyBytes) +
    fieldSize(valueSize) +
    intFieldSize(entry.createRevision) +
    intFieldSize(entry.modRevision) +
    intFieldSize(entry.version);

  const out = Buffer.allocUnsafe(fieldSize(entrySize));
  const w = { buf: out, pos: 0, sizes, next: 0 };
  writeTagAndLength(w, 0x0a, entrySize);
  writeTagAndLength(w, 0x0a, keyBytes);
  w.pos += out.write(entry.key, w.pos, 'utf8');
  writeTagAndLength(w, 0x12, valueSize);
  writeValue(w, entry.value as JsonValue);
  writeIntField(w, 0x18, entry.createRevision);
  writeIntField(w, 0x20, entry.modRevision);
  writeIntField(w, 0x28, entry.version);
  return out;
}

interface Writer {
  buf: Buffer;
  pos: number;
  /** Sizes from measure(), consumed in the same (pre-)order by the writers. */
  sizes: number[];
  next: number;
}

/** Size of a length-delimited field's tag, length and body (all tags here are one byte). */
function fieldSize(bodyBytes: number): number {
  return 1 + varintSize(bodyBytes) + bodyBytes;
}

/** proto3 leaves zero-valued int64 fields out. */
function intFieldSize(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/**
 * Returns the size of v's Value message body and records, in pre-order:
 * that size, then for a string its UTF-8 length, for a list its body size,
 * for a struct its body size and per field the key length and entry size.
 */
function measure(v: JsonValue, sizes: number[]): number {
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
    for (const item of v) list += fieldSize(measure(item, sizes));
    sizes[listAt] = list;
    size = fieldSize(list);
  } else {
    const structAt = sizes.push(0) - 1;
    let struct = 0;
    for (const key of Object.keys(v)) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      sizes.push(keyBytes);
      const entryAt = sizes.push(0) - 1;
      const entry = fieldSize(keyBytes) + fieldSize(measure(v[key], sizes));
      sizes[entryAt] = entry;
      struct += fieldSize(entry);
    }
    sizes[structAt] = struct;
    size = fieldSize(struct);
  }
  sizes[at] = size;
  return size;
}

function writeValue(w: Writer, v: JsonValue): void {
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
      writeValue(w, item);
    }
  } else {
    writeTagAndLength(w, 0x2a, w.sizes[w.next++]);
    for (const key of Object.keys(v)) {
      const keyBytes = w.sizes[w.next++];
      writeTagAndLength(w, 0x0a, w.sizes[w.next++]);
      writeTagAndLength(w, 0x0a, keyBytes);
      w.pos += w.buf.write(key, w.pos, 'utf8');
      writeTagAndLength(w, 0x12, w.sizes[w.next]);
      writeValue(w, v[key]);
    }
  }
}

function writeTagAndLength(w: Writer, tag: number, length: number): void {
  w.buf[w.pos++] = tag;
  writeVarint(w, length);
}

function writeIntField(w: Writer, tag: number, value: number): void {
  if (value === 0) return;
  w.buf[w.pos++] = tag;
  writeVarint(w, value);
}

/** Non-negative integers up to 2^53, so no bitwise operators (they truncate to 32 bits). */
function writeVarint(w: Writer, value: number): void {
  while (value >= 0x80) {
    w.buf[w.pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  w.buf[w.pos++] = value;
}
