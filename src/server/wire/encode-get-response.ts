/**
 * GetResponse{ entry=1 Entry }, encoded by hand: the Get hot path (see
 * proto-writer.ts for why). The bytes decode to the same message as the
 * generated encoder's (test/server/encode-get-response.test.ts).
 */
import type { GetResponse } from '../../gen/kv/v1/kv';
import { measureEntry, writeEntryField } from './entry';
import { fieldSize, newWriter } from './proto-writer';

export function encodeGetResponse(response: GetResponse): Buffer {
  const entry = response.entry;
  if (entry === undefined) return Buffer.alloc(0);
  const sizes: number[] = [];
  const w = newWriter(fieldSize(measureEntry(entry, sizes)), sizes);
  writeEntryField(w, 0x0a, entry);
  return w.buf;
}
