/**
 * WatchResponse{ events=1 repeated Event{ type=1 EventType, entry=2 Entry, prev_entry=3 Entry }, revision=2 },
 * encoded by hand from the store's watch batch (values still JSON text):
 * the same two-pass writer and Entry layout as Get, so a value reads back
 * the same through Get and Watch (an object field named "__proto__" included).
 */
import { EventType } from '../../gen/kv/v1/kv';
import type { StoredEntry } from '../../store/change';
import type { JsonValue, WatchBatch, WatchEvent } from '../../store/key-value-store';
import { measureEntry, type WireEntry, writeEntryField } from '@kv/client/wire';
import { fieldSize, intFieldSize, newWriter, writeIntField, writeTagAndLength } from '@kv/client/wire';

export function encodeWatchResponse(batch: WatchBatch): Buffer {
  const events = batch.events.map(wireEvent);
  const sizes: number[] = [];
  let total = intFieldSize(batch.revision);
  for (const event of events) {
    const at = sizes.push(0) - 1;
    const size =
      intFieldSize(event.type) +
      fieldSize(measureEntry(event.entry, sizes)) +
      (event.prev === undefined ? 0 : fieldSize(measureEntry(event.prev, sizes)));
    sizes[at] = size;
    total += fieldSize(size);
  }
  const w = newWriter(total, sizes);
  for (const event of events) {
    writeTagAndLength(w, 0x0a, w.sizes[w.next++]);
    writeIntField(w, 0x08, event.type);
    writeEntryField(w, 0x12, event.entry);
    if (event.prev !== undefined) writeEntryField(w, 0x1a, event.prev);
  }
  writeIntField(w, 0x10, batch.revision);
  return w.buf;
}

interface WireEvent {
  type: EventType;
  entry: WireEntry;
  prev: WireEntry | undefined;
}

function wireEvent(event: WatchEvent): WireEvent {
  const entry =
    event.type === 'put' && event.entry !== undefined
      ? wireEntry(event.key, event.entry)
      : // A DELETE event's entry: the key, and the delete's revision as mod_revision.
        { key: event.key, value: undefined, createRevision: 0, modRevision: event.revision, version: 0, lease: 0 };
  return {
    type: event.type === 'put' ? EventType.EVENT_TYPE_PUT : EventType.EVENT_TYPE_DELETE,
    entry,
    prev: event.prev === undefined ? undefined : wireEntry(event.key, event.prev),
  };
}

function wireEntry(key: string, entry: StoredEntry): WireEntry {
  return {
    key,
    value: JSON.parse(entry.valueJson) as JsonValue,
    createRevision: entry.createRevision,
    modRevision: entry.modRevision,
    version: entry.version,
    lease: entry.lease,
  };
}
