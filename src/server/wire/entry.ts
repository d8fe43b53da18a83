/**
 * kv.v1.Entry on the wire, for every response that carries entries:
 *   Entry{ key=1 string, value=2 Value, create_revision=3, mod_revision=4, version=5, lease=6 }
 */
import type { JsonValue } from '../../store/key-value-store';

/** An Entry to encode; `value` is absent in a DELETE event's entry. */
export interface WireEntry {
  key: string;
  value: JsonValue | undefined;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}
import { measureJsonValue, writeJsonValue } from './json-value';
import { fieldSize, intFieldSize, type ProtoWriter, writeIntField, writeStringField, writeTagAndLength } from './proto-writer';

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
