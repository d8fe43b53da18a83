/**
 * SetRequest{ key=1 string, value=2 Value, expected_revision=3 int64 },
 * decoded by hand straight into plain JSON (json-value.ts says why): the Set
 * hot path.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { SetRequest } from '../../gen/kv/v1/kv';
import { InvalidArgumentError } from '../service-errors';
import { readJsonValue } from './json-value';

export function decodeSetRequest(input: BinaryReader | Uint8Array): SetRequest {
  const reader = input instanceof BinaryReader ? input : new BinaryReader(input);
  const request: SetRequest = { key: '', value: undefined, expectedRevision: undefined };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType: WireType = tag & 7;
    if (field === 1 && wireType === WireType.LengthDelimited) request.key = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) request.value = readJsonValue(reader, reader.uint32());
    else if (field === 3 && wireType === WireType.Varint) request.expectedRevision = toSafeNumber(reader.int64(), 'expected_revision');
    else reader.skip(wireType, field);
  }
  return request;
}

function toSafeNumber(int64: bigint | string, field: string): number {
  const n = Number(int64);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field} ${String(int64)} is outside ±(2^53 - 1)`);
  return n;
}
