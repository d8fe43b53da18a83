/**
 * The two-pass protobuf writer behind the hand-written response encoders:
 * a measure pass records every nested message's size (in pre-order) in
 * `sizes`, then the write pass fills one buffer of the exact size, taking
 * the sizes back in the same order. One buffer and no wrapper objects per
 * message: what the generated encoders cost most on the hot paths.
 *
 * All field numbers here are below 16, so every tag is one byte.
 */

export interface ProtoWriter {
  buf: Buffer;
  pos: number;
  /** Sizes from the measure pass, consumed in the same (pre-)order by the writers. */
  sizes: number[];
  next: number;
}

export function newWriter(totalBytes: number, sizes: number[]): ProtoWriter {
  return { buf: Buffer.allocUnsafe(totalBytes), pos: 0, sizes, next: 0 };
}

export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** Size of a length-delimited field: its tag, its length and its body. */
export function fieldSize(bodyBytes: number): number {
  return 1 + varintSize(bodyBytes) + bodyBytes;
}

/** Size of a varint field; proto3 leaves a zero out. */
export function intFieldSize(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

export function writeTagAndLength(w: ProtoWriter, tag: number, length: number): void {
  w.buf[w.pos++] = tag;
  writeVarint(w, length);
}

export function writeIntField(w: ProtoWriter, tag: number, value: number): void {
  if (value === 0) return;
  w.buf[w.pos++] = tag;
  writeVarint(w, value);
}

/** A length-delimited string field whose UTF-8 length the measure pass recorded. */
export function writeStringField(w: ProtoWriter, tag: number, value: string, utf8Bytes: number): void {
  writeTagAndLength(w, tag, utf8Bytes);
  w.pos += w.buf.write(value, w.pos, 'utf8');
}

/** Non-negative integers up to 2^53, so no bitwise operators (they truncate to 32 bits). */
export function writeVarint(w: ProtoWriter, value: number): void {
  while (value >= 0x80) {
    w.buf[w.pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  w.buf[w.pos++] = value;
}
