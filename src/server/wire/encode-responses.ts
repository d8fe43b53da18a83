/**
 * Hand-written encoders of the responses that carry entries (Get, List,
 * Update, Txn) and of SetResponse (the hot write path), on the two-pass writer (proto-writer.ts): one buffer per
 * response, no wrapper objects, and every value exactly as stored (the
 * generated encoders drop an object field named "__proto__"). The bytes
 * decode to the same messages as the generated encoders' (tested against
 * the generated decoders).
 *
 *   SetResponse{ revision=1 }
 *   GetResponse{ entry=1 }          UpdateResponse{ entry=1 }
 *   ListResponse{ entries=1, next_page_token=2, revision=3 }
 *   TxnResponse{ succeeded=1 bool, revision=2, responses=3 ResponseOp }
 *   ResponseOp{ get=1 GetResponse, set=2 SetResponse{ revision=1 },
 *     delete=3 DeleteResponse{ deleted=1, revision=2 }, clear=4 ClearResponse{ deleted_count=1, revision=2 },
 *     update=5 UpdateResponse }
 */
import type { Entry, TxnOpResult, TxnResult } from '../../store/key-value-store';
import { measureEntry, writeEntryField } from '@kv/client/wire';
import { fieldSize, intFieldSize, newWriter, type ProtoWriter, writeIntField, writeStringField, writeTagAndLength } from '@kv/client/wire';

/** A SetResponse, the answer to the most frequent write: one varint field, so no measure pass and no writer. */
export function encodeSetResponse(response: { revision: number }): Buffer {
  const size = intFieldSize(response.revision);
  const w = newWriter(size, NO_SIZES);
  writeIntField(w, 0x08, response.revision);
  return w.buf;
}

const NO_SIZES: number[] = [];

/** A GetResponse: the entry, or nothing at all for a missing key (inside a Txn). */
export function encodeGetResponse(response: { entry?: Entry | undefined }): Buffer {
  const sizes: number[] = [];
  const w = newWriter(entryOnlySize(response.entry, sizes), sizes);
  writeEntryOnly(w, response.entry);
  return w.buf;
}

export const encodeUpdateResponse = encodeGetResponse;

export interface ListPage {
  entries: Entry[];
  nextPageToken: string;
  revision: number;
}

export function encodeListResponse(page: ListPage): Buffer {
  const sizes: number[] = [];
  let total = 0;
  for (const entry of page.entries) total += fieldSize(measureEntry(entry, sizes));
  const tokenBytes = Buffer.byteLength(page.nextPageToken, 'utf8');
  if (tokenBytes > 0) total += fieldSize(tokenBytes);
  total += intFieldSize(page.revision);
  const w = newWriter(total, sizes);
  for (const entry of page.entries) writeEntryField(w, 0x0a, entry);
  if (tokenBytes > 0) writeStringField(w, 0x12, page.nextPageToken, tokenBytes);
  writeIntField(w, 0x18, page.revision);
  return w.buf;
}

export function encodeTxnResponse(result: TxnResult): Buffer {
  const sizes: number[] = [];
  let total = (result.succeeded ? 2 : 0) + intFieldSize(result.revision);
  for (const op of result.results) {
    // Per op: the ResponseOp's body size, then its one field's body size, then any entry's sizes.
    const at = sizes.push(0, 0) - 2;
    const inner = resultBodySize(op, sizes);
    sizes[at] = fieldSize(inner);
    sizes[at + 1] = inner;
    total += fieldSize(sizes[at]);
  }
  const w = newWriter(total, sizes);
  if (result.succeeded) writeIntField(w, 0x08, 1);
  writeIntField(w, 0x10, result.revision);
  for (const op of result.results) {
    writeTagAndLength(w, 0x1a, w.sizes[w.next++]);
    writeTagAndLength(w, RESULT_TAGS[op.type], w.sizes[w.next++]);
    writeResultBody(w, op);
  }
  return w.buf;
}

const RESULT_TAGS: Record<TxnOpResult['type'], number> = { get: 0x0a, set: 0x12, delete: 0x1a, clear: 0x22, update: 0x2a };

/** Size of a ResponseOp's inner message (GetResponse, SetResponse...); records any entry's sizes. */
function resultBodySize(op: TxnOpResult, sizes: number[]): number {
  switch (op.type) {
    case 'get':
    case 'update':
      return entryOnlySize(op.entry, sizes);
    case 'set':
      return intFieldSize(op.revision);
    case 'delete':
      return (op.deleted ? 2 : 0) + intFieldSize(op.revision);
    case 'clear':
      return intFieldSize(op.deletedCount) + intFieldSize(op.revision);
  }
}

function writeResultBody(w: ProtoWriter, op: TxnOpResult): void {
  switch (op.type) {
    case 'get':
    case 'update':
      writeEntryOnly(w, op.entry);
      return;
    case 'set':
      writeIntField(w, 0x08, op.revision);
      return;
    case 'delete':
      if (op.deleted) writeIntField(w, 0x08, 1);
      writeIntField(w, 0x10, op.revision);
      return;
    case 'clear':
      writeIntField(w, 0x08, op.deletedCount);
      writeIntField(w, 0x10, op.revision);
      return;
  }
}

/** Size of a message whose one field is an Entry (field 1), absent for undefined. */
function entryOnlySize(entry: Entry | undefined, sizes: number[]): number {
  return entry === undefined ? 0 : fieldSize(measureEntry(entry, sizes));
}

function writeEntryOnly(w: ProtoWriter, entry: Entry | undefined): void {
  if (entry !== undefined) writeEntryField(w, 0x0a, entry);
}
