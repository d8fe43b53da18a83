/**
 * WatchResponse{ events=1 repeated Event{ type=1 EventType, entry=2 Entry, prev_entry=3 Entry }, revision=2, fragment=3,
 * progress_interval_ms=4, history_id=5 },
 * encoded by hand from the store's watch batch (values still JSON text):
 * the same two-pass writer and Entry layout as Get, so a value reads back
 * the same through Get and Watch (an object field named "__proto__" included).
 */
import { EventType } from '../../gen/kv/v1/kv';
import type { StoredEntry } from '../../store/change';
import type { JsonValue, WatchBatch, WatchEvent } from '../../store/key-value-store';
import { measureEntry, type WireEntry, writeEntryField } from '@kv/client/wire';
import { fieldSize, intFieldSize, newWriter, writeIntField, writeStringField, writeTagAndLength } from '@kv/client/wire';

/**
 * A watch batch as one message: `fragment` when more events of its revision
 * follow (WatchRequest.fragment); `progressIntervalMs` and `historyId` in a
 * stream's first.
 */
export interface WatchMessage extends WatchBatch {
  fragment?: boolean;
  progressIntervalMs?: number;
  historyId?: string;
}

export function encodeWatchResponse(message: WatchMessage): Buffer {
  const events = message.events.map(wireEvent);
  const sizes: number[] = [];
  const progress = message.progressIntervalMs ?? 0;
  const historyId = message.historyId ?? '';
  let total = intFieldSize(message.revision) + (message.fragment === true ? 2 : 0) + intFieldSize(progress);
  if (historyId !== '') total += fieldSize(Buffer.byteLength(historyId, 'utf8'));
  for (const event of events) total += fieldSize(measureEvent(event, sizes));
  const w = newWriter(total, sizes);
  for (const event of events) {
    writeTagAndLength(w, 0x0a, w.sizes[w.next++]);
    writeIntField(w, 0x08, event.type);
    writeEntryField(w, 0x12, event.entry);
    if (event.prev !== undefined) writeEntryField(w, 0x1a, event.prev);
  }
  writeIntField(w, 0x10, message.revision);
  if (message.fragment === true) writeIntField(w, 0x18, 1);
  writeIntField(w, 0x20, progress);
  if (historyId !== '') writeStringField(w, 0x2a, historyId, Buffer.byteLength(historyId, 'utf8'));
  return w.buf;
}

/** Where a message of fragments ends: past about this many bytes of events (WatchRequest.fragment). */
export const WATCH_FRAGMENT_BYTES = 1024 * 1024;

/**
 * Splits a batch into messages of about `maxBytes` of events each (at least
 * one event each): at a revision boundary where one falls, and otherwise
 * inside a revision, every message of it but the last marked `fragment`.
 * The events keep their order, so a client resuming inside a revision
 * meets the ones it had again in the same order.
 */
export function splitWatchBatch(batch: WatchBatch, maxBytes = WATCH_FRAGMENT_BYTES): WatchMessage[] {
  const events = batch.events;
  // A cheap bound first, so that the usual batch is not measured twice: on the wire a
  // value takes at most about 6 bytes per character of its JSON text (`0,` is 2
  // characters, and a Value of a number in a list 11 bytes), a key at most 3 per
  // UTF-16 unit, an event's numbers and tags less than 64.
  let bound = 0;
  for (const event of events) {
    bound += 64 + 3 * event.key.length;
    if (event.entry !== undefined) bound += 64 + 3 * event.key.length + 6 * event.entry.valueJson.length;
    if (event.prev !== undefined) bound += 64 + 3 * event.key.length + 6 * event.prev.valueJson.length;
  }
  if (bound <= maxBytes) return [batch];
  const messages: WatchMessage[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = fieldSize(measureEvent(wireEvent(events[i]), []));
    if (i > start && bytes + size > maxBytes) {
      const revision = events[i - 1].revision;
      const inside = revision === events[i].revision;
      messages.push(inside ? { events: events.slice(start, i), revision, fragment: true } : { events: events.slice(start, i), revision });
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  messages.push({ events: events.slice(start), revision: batch.revision });
  return messages;
}

/** The size of an Event message's body; its sizes pushed to `sizes` as the writer will need them. */
function measureEvent(event: WireEvent, sizes: number[]): number {
  const at = sizes.push(0) - 1;
  const size =
    intFieldSize(event.type) +
    fieldSize(measureEntry(event.entry, sizes)) +
    (event.prev === undefined ? 0 : fieldSize(measureEntry(event.prev, sizes)));
  sizes[at] = size;
  return size;
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
