/**
 * kv.v1.Entry on the wire, for every response that carries entries:
 *   Entry{ key=1 string, value=2 Value, create_revision=3, mod_revision=4, version=5, lease=6 }
 */
import { type BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { type JsonValue, measureJsonValue, readJsonValue, writeJsonValue } from './json-value';
import { fieldSize, intFieldSize, type ProtoWriter, writeIntField, writeStringField, writeTagAndLength } from './proto-writer';

// Plain constants: each `WireType.X` is a getter call on the CommonJS build of @bufbuild/protobuf.
const VARINT = WireType.Varint;
const LEN = WireType.LengthDelimited;

/** An Entry to encode; `value` is absent in a DELETE event's entry. */
export interface WireEntry {
  key: string;
  value: JsonValue | undefined;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

/** Measure pass for an Entry message body: returns its size; records it, the key's length and the value's sizes. */
export function measureEntry(entry: WireEntry, sizes: number[]): number {
  const at = sizes.push(0) - 1;
  const keyBytes = Buffer.byteLength(entry.key, 'utf8');
  sizes.push(keyBytes);
  const size =
    fieldSize(keyBytes) +
    (entry.value === undefined ? 0 : fieldSize(measureJsonValue(entry.value, sizes))) +
    intFieldSize(entry.createRevision) +
    intFieldSize(entry.modRevision) +
    intFieldSize(entry.version) +
    intFieldSize(entry.lease);
  sizes[at] = size;
  return size;
}

/** Writes an Entry field (tag, length, body) measured by measureEntry. */
export function writeEntryField(w: ProtoWriter, tag: number, entry: WireEntry): void {
  writeTagAndLength(w, tag, w.sizes[w.next++]);
  writeStringField(w, 0x0a, entry.key, w.sizes[w.next++]);
  if (entry.value !== undefined) {
    writeTagAndLength(w, 0x12, w.sizes[w.next]);
    writeJsonValue(w, entry.value);
  }
  writeIntField(w, 0x18, entry.createRevision);
  writeIntField(w, 0x20, entry.modRevision);
  writeIntField(w, 0x28, entry.version);
  writeIntField(w, 0x30, entry.lease);
}

/** Reads an Entry message of `length` bytes (the value: undefined if absent, as in a DELETE event). */
export function readEntry(reader: BinaryReader, length: number): WireEntry {
  const end = reader.pos + length;
  const entry: WireEntry = { key: '', value: undefined, createRevision: 0, modRevision: 0, version: 0, lease: 0 };
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (field === 1 && wireType === LEN) entry.key = reader.string();
    else if (field === 2 && wireType === LEN) entry.value = readJsonValue(reader, reader.uint32());
    else if (field === 3 && wireType === VARINT) entry.createRevision = int64(reader);
    else if (field === 4 && wireType === VARINT) entry.modRevision = int64(reader);
    else if (field === 5 && wireType === VARINT) entry.version = int64(reader);
    else if (field === 6 && wireType === VARINT) entry.lease = int64(reader);
    else reader.skip(wireType, field);
  }
  return entry;
}

function int64(reader: BinaryReader): number {
  return Number(reader.int64());
}
