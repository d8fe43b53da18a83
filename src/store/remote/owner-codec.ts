/**
 * How owner-protocol.ts's messages are laid out in a frame (frame-codec.ts).
 * What every write sends has a layout of its own: a Set, the read-index
 * question and the answers to both, and the live change feed. Anything else
 * (leases, transactions, errors, the bootstrap) is V8-serialized, message by
 * message: rarer, and of many shapes. V8's serializer and deserializer cost
 * a worker about 8% of its time under writes (docs/benchmarks-set-path.md);
 * reading these layouts back makes only the strings and objects the
 * receiver keeps.
 */
import type net from 'node:net';
import v8 from 'node:v8';
import type { ValidSet } from '../abstract-key-value-store';
import type { StoredEntry } from '../change';
import type { WatchBatch, WatchEvent } from '../key-value-store';
import { FrameChannel } from './frame-channel';
import { type FrameCodec, FrameReader, FrameWriter } from './frame-codec';
import type { OwnerMessage, WorkerMessage } from './owner-protocol';

const enum Tag {
  /** Any message, V8-serialized. */
  V8 = 0,
  CallSet = 1,
  ReadIndex = 2,
  /** A reply whose value is a number (the read index). */
  ReplyNumber = 3,
  /** A reply whose value is { revision } and nothing else (a Set's). */
  ReplyRevision = 4,
  LiveFeed = 5,
}

/** A number field that may be undefined: NaN stands for undefined (no revision, lease or ttl is NaN). */
function optional(value: number | undefined): number {
  return value ?? Number.NaN;
}

function fromOptional(value: number): number | undefined {
  return Number.isNaN(value) ? undefined : value;
}

/** Every field of ValidSet is written below: a field added to it fails to compile here until it is. */
type SetFieldsWritten = 'key' | 'keyBytes' | 'valueJson' | 'valueBytes' | 'expectedRevision' | 'lease' | 'ttlMs';
const EVERY_SET_FIELD_WRITTEN: Exclude<keyof ValidSet, SetFieldsWritten> extends never ? true : never = true;
void EVERY_SET_FIELD_WRITTEN;

function v8Message(message: unknown, writer: FrameWriter): void {
  writer.u8(Tag.V8);
  writer.bytes(v8.serialize(message));
}

export const WORKER_CODEC: FrameCodec<WorkerMessage, OwnerMessage> = {
  encode(message, w) {
    if (message.kind === 'call' && message.call.method === 'set') {
      const op = message.call.op;
      w.u8(Tag.CallSet);
      w.f64(message.id);
      w.str(op.key);
      w.f64(op.keyBytes);
      w.str(op.valueJson);
      w.f64(op.valueBytes);
      w.f64(optional(op.expectedRevision));
      w.f64(op.lease);
      w.f64(optional(op.ttlMs));
    } else if (message.kind === 'read-index') {
      w.u8(Tag.ReadIndex);
      w.f64(message.id);
    } else v8Message(message, w);
  },
  decode(r) {
    const tag = r.u8();
    switch (tag) {
      case Tag.ReplyNumber:
        return { kind: 'reply', id: r.f64(), value: r.f64() };
      case Tag.ReplyRevision:
        return { kind: 'reply', id: r.f64(), value: { revision: r.f64() } };
      case Tag.LiveFeed:
        return { kind: 'live-feed', bytes: r.bytes() };
      case Tag.V8:
        return v8.deserialize(r.bytes()) as OwnerMessage;
      default:
        throw new RangeError(`a frame from the store owner holds a message of unknown kind ${tag}`);
    }
  },
};

export const OWNER_CODEC: FrameCodec<OwnerMessage, WorkerMessage> = {
  encode(message, w) {
    if (message.kind === 'reply') {
      const value = message.value;
      if (typeof value === 'number') {
        w.u8(Tag.ReplyNumber);
        w.f64(message.id);
        w.f64(value);
        return;
      }
      if (isRevisionOnly(value)) {
        w.u8(Tag.ReplyRevision);
        w.f64(message.id);
        w.f64(value.revision);
        return;
      }
    } else if (message.kind === 'live-feed') {
      w.u8(Tag.LiveFeed);
      w.bytes(message.bytes);
      return;
    }
    v8Message(message, w);
  },
  decode(r) {
    const tag = r.u8();
    switch (tag) {
      case Tag.CallSet: {
        const id = r.f64();
        const op: ValidSet = {
          key: r.str(),
          keyBytes: r.f64(),
          valueJson: r.str(),
          valueBytes: r.f64(),
          expectedRevision: fromOptional(r.f64()),
          lease: r.f64(),
          ttlMs: fromOptional(r.f64()),
        };
        return { kind: 'call', id, call: { method: 'set', op } };
      }
      case Tag.ReadIndex:
        return { kind: 'read-index', id: r.f64() };
      case Tag.V8:
        return v8.deserialize(r.bytes()) as WorkerMessage;
      default:
        throw new RangeError(`a frame from a worker holds a message of unknown kind ${tag}`);
    }
  },
};

/** { revision: number } with no other own field: what a Set answers. */
function isRevisionOnly(value: unknown): value is { revision: number } {
  if (typeof value !== 'object' || value === null) return false;
  let fields = 0;
  for (const name in value) {
    if (name !== 'revision' || ++fields > 1) return false;
  }
  return fields === 1 && typeof (value as { revision: unknown }).revision === 'number';
}

/** The worker's end of its channel to the owner. */
export function workerChannel(socket: net.Socket, receive: (messages: OwnerMessage[]) => void): FrameChannel<WorkerMessage, OwnerMessage> {
  return new FrameChannel(socket, receive, WORKER_CODEC);
}

/** The owner's end of a worker's channel. */
export function ownerChannel(socket: net.Socket, receive: (messages: WorkerMessage[]) => void): FrameChannel<OwnerMessage, WorkerMessage> {
  return new FrameChannel(socket, receive, OWNER_CODEC);
}

const EVENT_PUT = 1;
const HAS_ENTRY = 2;
const HAS_PREV = 4;

/** Every field of a batch, an event and an entry is written below (as EVERY_SET_FIELD_WRITTEN). */
const EVERY_FEED_FIELD_WRITTEN: [
  Exclude<keyof WatchBatch, 'events' | 'revision'>,
  Exclude<keyof WatchEvent, 'type' | 'key' | 'revision' | 'entry' | 'prev'>,
  Exclude<keyof StoredEntry, 'valueJson' | 'createRevision' | 'modRevision' | 'version' | 'lease'>,
] extends [never, never, never]
  ? true
  : never = true;
void EVERY_FEED_FIELD_WRITTEN;

/** Feed batches are slices of its slabs: a batch stays as it is for as long as it is kept (a slab is never written twice). */
const feedWriter = new FrameWriter();

/** The live feed's batches: encoded once by the owner, the same bytes to every worker. */
export function encodeWatchBatch(batch: WatchBatch): Buffer {
  const w = feedWriter;
  w.begin();
  w.f64(batch.revision);
  w.u32(batch.events.length);
  for (const event of batch.events) {
    w.u8((event.type === 'put' ? EVENT_PUT : 0) | (event.entry === undefined ? 0 : HAS_ENTRY) | (event.prev === undefined ? 0 : HAS_PREV));
    w.str(event.key);
    w.f64(event.revision);
    if (event.entry !== undefined) writeEntry(w, event.entry);
    if (event.prev !== undefined) writeEntry(w, event.prev);
  }
  return w.end();
}

export function decodeWatchBatch(bytes: Buffer): WatchBatch {
  const r = new FrameReader(bytes);
  const size = r.u32();
  if (size !== bytes.length - 4) throw new RangeError(`a feed batch of ${bytes.length - 4} bytes says it has ${size}`);
  const revision = r.f64();
  const count = r.u32();
  const events: WatchEvent[] = new Array<WatchEvent>(count);
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    const key = r.str();
    const eventRevision = r.f64();
    const entry = (flags & HAS_ENTRY) !== 0 ? readEntry(r) : undefined;
    const prev = (flags & HAS_PREV) !== 0 ? readEntry(r) : undefined;
    events[i] = { type: (flags & EVENT_PUT) !== 0 ? 'put' : 'delete', key, revision: eventRevision, entry, prev };
  }
  if (!r.done) throw new RangeError('a feed batch has bytes after its last event');
  return { events, revision };
}

function writeEntry(w: FrameWriter, entry: StoredEntry): void {
  w.str(entry.valueJson);
  w.f64(entry.createRevision);
  w.f64(entry.modRevision);
  w.f64(entry.version);
  w.f64(entry.lease);
}

function readEntry(r: FrameReader): StoredEntry {
  return { valueJson: r.str(), createRevision: r.f64(), modRevision: r.f64(), version: r.f64(), lease: r.f64() };
}
