/**
 * Hand-written decoders of the requests that carry JSON values (SetRequest,
 * UpdateRequest, TxnRequest), straight into plain JSON (json-value.ts says
 * why: the generated decoders lose an object field named "__proto__"). They
 * give the same shapes as the generated decoders; messages without values
 * inside them (GetRequest, DeleteRequest, ClearRequest) use those.
 *
 *   SetRequest{ key=1, value=2 Value, expected_revision=3, lease=4, ttl_ms=5 }
 *   UpdateRequest{ key=1, patch=2 Value, expected_revision=3, create_if_missing=4 }
 *   TxnRequest{ compare=1 Compare, success=2 RequestOp, failure=3 RequestOp }
 *   Compare{ result=1, key=2, version=3, create_revision=4, mod_revision=5, value=6 Value, lease=7 }
 *   RequestOp{ get=1, set=2, delete=3, clear=4, update=5 }
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import {
  ClearRequest,
  type Compare,
  DeleteRequest,
  GetRequest,
  type RequestOp,
  type SetRequest,
  type TxnRequest,
  type UpdateRequest,
} from '../../gen/kv/v1/kv';
import { VALUE_NESTING } from '../../store/value-rules';
import { InvalidArgumentError } from '../service-errors';
import { readJsonValue } from '@kv/client/wire';
import { readValueText } from './json-text';

type Input = BinaryReader | Uint8Array;

// Read once: on the CommonJS build of @bufbuild/protobuf each access of an export is a getter call.
const Reader = BinaryReader;
const readerOf = (input: Input): BinaryReader => (input instanceof Reader ? input : new Reader(input));

/** Calls `field` for each field of the message that ends at `end`. */
function forEachField(reader: BinaryReader, end: number, field: (number: number, wireType: WireType) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    const number = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (!field(number, wireType)) reader.skip(wireType, number);
  }
}

function int64(reader: BinaryReader, field: string): number {
  const raw = reader.int64();
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field} ${String(raw)} is outside ±(2^53 - 1)`);
  return n;
}

const LEN = WireType.LengthDelimited;
const VARINT = WireType.Varint;

export function decodeSetRequest(input: Input, length?: number): SetRequest {
  const reader = readerOf(input);
  const end = length === undefined ? reader.len : reader.pos + length;
  const request: SetRequest = { key: '', value: undefined, expectedRevision: undefined, lease: 0, ttlMs: 0 };
  forEachField(reader, end, (field, type) => {
    if (field === 1 && type === LEN) request.key = reader.string();
    // As JSON text when it can be (json-text.ts): the store keeps text.
    else if (field === 2 && type === LEN) request.value = readValueText(reader, reader.uint32(), VALUE_NESTING);
    else if (field === 3 && type === VARINT) request.expectedRevision = int64(reader, 'expected_revision');
    else if (field === 4 && type === VARINT) request.lease = int64(reader, 'lease');
    else if (field === 5 && type === VARINT) request.ttlMs = int64(reader, 'ttl_ms');
    else return false;
    return true;
  });
  return request;
}

export function decodeUpdateRequest(input: Input, length?: number): UpdateRequest {
  const reader = readerOf(input);
  const end = length === undefined ? reader.len : reader.pos + length;
  const request: UpdateRequest = { key: '', patch: undefined, expectedRevision: undefined, createIfMissing: false };
  forEachField(reader, end, (field, type) => {
    if (field === 1 && type === LEN) request.key = reader.string();
    else if (field === 2 && type === LEN) request.patch = readJsonValue(reader, reader.uint32(), VALUE_NESTING);
    else if (field === 3 && type === VARINT) request.expectedRevision = int64(reader, 'expected_revision');
    else if (field === 4 && type === VARINT) request.createIfMissing = reader.bool();
    else return false;
    return true;
  });
  return request;
}

export function decodeTxnRequest(input: Input): TxnRequest {
  const reader = readerOf(input);
  const request: TxnRequest = { compare: [], success: [], failure: [] };
  forEachField(reader, reader.len, (field, type) => {
    if (type !== LEN) return false;
    if (field === 1) request.compare.push(decodeCompare(reader, reader.uint32()));
    else if (field === 2) request.success.push(decodeRequestOp(reader, reader.uint32()));
    else if (field === 3) request.failure.push(decodeRequestOp(reader, reader.uint32()));
    else return false;
    return true;
  });
  return request;
}

function decodeCompare(reader: BinaryReader, length: number): Compare {
  const end = reader.pos + length;
  const compare: Compare = { result: 0, key: '' };
  forEachField(reader, end, (field, type) => {
    if (field === 1 && type === VARINT) compare.result = reader.int32();
    else if (field === 2 && type === LEN) compare.key = reader.string();
    else if (field === 3 && type === VARINT) compare.version = int64(reader, 'compare version');
    else if (field === 4 && type === VARINT) compare.createRevision = int64(reader, 'compare create_revision');
    else if (field === 5 && type === VARINT) compare.modRevision = int64(reader, 'compare mod_revision');
    else if (field === 6 && type === LEN) {
      compare.value = readJsonValue(reader, reader.uint32(), VALUE_NESTING);
      if (compare.value === undefined)
        throw new InvalidArgumentError(`compare on key ${JSON.stringify(compare.key)}: the value to compare with is empty`);
    } else if (field === 7 && type === VARINT) compare.lease = int64(reader, 'compare lease');
    else return false;
    return true;
  });
  return compare;
}

function decodeRequestOp(reader: BinaryReader, length: number): RequestOp {
  const end = reader.pos + length;
  const op: RequestOp = {};
  forEachField(reader, end, (field, type) => {
    if (type !== LEN) return false;
    if (field === 1) op.get = GetRequest.decode(reader, reader.uint32());
    else if (field === 2) op.set = decodeSetRequest(reader, reader.uint32());
    else if (field === 3) op.delete = DeleteRequest.decode(reader, reader.uint32());
    else if (field === 4) op.clear = ClearRequest.decode(reader, reader.uint32());
    else if (field === 5) op.update = decodeUpdateRequest(reader, reader.uint32());
    else return false;
    return true;
  });
  return op;
}
