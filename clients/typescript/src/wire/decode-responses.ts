/**
 * The SDK's decoders of the responses that carry JSON values, into the same
 * shapes as the generated decoders (which lose an object field named
 * "__proto__": they assign Struct fields with `obj[key] = ...`):
 *
 *   GetResponse{ entry=1 }   UpdateResponse{ entry=1 }
 *   ListResponse{ entries=1, next_page_token=2, revision=3 }
 *   WatchResponse{ events=1 Event{ type=1, entry=2, prev_entry=3 }, revision=2 }
 *   TxnResponse{ succeeded=1, revision=2, responses=3 ResponseOp{ get=1, set=2, delete=3, clear=4, update=5 } }
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import {
  ClearResponse,
  DeleteResponse,
  type Event,
  type GetResponse,
  type ListResponse,
  type ResponseOp,
  SetResponse,
  type TxnResponse,
  type UpdateResponse,
  type WatchResponse,
} from '../gen/kv/v1/kv';
import { readEntry } from './entry';

const LEN = WireType.LengthDelimited;
const VARINT = WireType.Varint;

function fields(reader: BinaryReader, end: number, each: (field: number, wireType: WireType) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (!each(field, wireType)) reader.skip(wireType, field);
  }
}

const int64 = (reader: BinaryReader): number => Number(reader.int64());

function readEntryOnly(reader: BinaryReader, end: number): { entry: GetResponse['entry'] } {
  const message: { entry: GetResponse['entry'] } = { entry: undefined };
  fields(reader, end, (field, type) => {
    if (field !== 1 || type !== LEN) return false;
    message.entry = readEntry(reader, reader.uint32());
    return true;
  });
  return message;
}

export function decodeGetResponse(bytes: Uint8Array): GetResponse {
  const reader = new BinaryReader(bytes);
  return readEntryOnly(reader, reader.len);
}

export function decodeUpdateResponse(bytes: Uint8Array): UpdateResponse {
  return decodeGetResponse(bytes);
}

export function decodeListResponse(bytes: Uint8Array): ListResponse {
  const reader = new BinaryReader(bytes);
  const message: ListResponse = { entries: [], nextPageToken: '', revision: 0 };
  fields(reader, reader.len, (field, type) => {
    if (field === 1 && type === LEN) message.entries.push(readEntry(reader, reader.uint32()));
    else if (field === 2 && type === LEN) message.nextPageToken = reader.string();
    else if (field === 3 && type === VARINT) message.revision = int64(reader);
    else return false;
    return true;
  });
  return message;
}

export function decodeWatchResponse(bytes: Uint8Array): WatchResponse {
  const reader = new BinaryReader(bytes);
  const message: WatchResponse = { events: [], revision: 0, fragment: false, progressIntervalMs: 0, historyId: '' };
  fields(reader, reader.len, (field, type) => {
    if (field === 1 && type === LEN) message.events.push(readEvent(reader, reader.pos + reader.uint32()));
    else if (field === 2 && type === VARINT) message.revision = int64(reader);
    else if (field === 3 && type === VARINT) message.fragment = reader.bool();
    else if (field === 4 && type === VARINT) message.progressIntervalMs = int64(reader);
    else if (field === 5 && type === LEN) message.historyId = reader.string();
    else return false;
    return true;
  });
  return message;
}

function readEvent(reader: BinaryReader, end: number): Event {
  const event: Event = { type: 0, entry: undefined, prevEntry: undefined };
  fields(reader, end, (field, type) => {
    if (field === 1 && type === VARINT) event.type = reader.int32();
    else if (field === 2 && type === LEN) event.entry = readEntry(reader, reader.uint32());
    else if (field === 3 && type === LEN) event.prevEntry = readEntry(reader, reader.uint32());
    else return false;
    return true;
  });
  return event;
}

export function decodeTxnResponse(bytes: Uint8Array): TxnResponse {
  const reader = new BinaryReader(bytes);
  const message: TxnResponse = { succeeded: false, revision: 0, responses: [] };
  fields(reader, reader.len, (field, type) => {
    if (field === 1 && type === VARINT) message.succeeded = reader.bool();
    else if (field === 2 && type === VARINT) message.revision = int64(reader);
    else if (field === 3 && type === LEN) message.responses.push(readResponseOp(reader, reader.pos + reader.uint32()));
    else return false;
    return true;
  });
  return message;
}

function readResponseOp(reader: BinaryReader, end: number): ResponseOp {
  const op: ResponseOp = {};
  fields(reader, end, (field, type) => {
    if (type !== LEN) return false;
    const length = reader.uint32();
    if (field === 1) op.get = readEntryOnly(reader, reader.pos + length);
    else if (field === 2) op.set = SetResponse.decode(reader, length);
    else if (field === 3) op.delete = DeleteResponse.decode(reader, length);
    else if (field === 4) op.clear = ClearResponse.decode(reader, length);
    else if (field === 5) op.update = readEntryOnly(reader, reader.pos + length);
    else reader.pos += length;
    return true;
  });
  return op;
}
