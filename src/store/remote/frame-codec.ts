/**
 * The bytes of a FrameChannel frame: a 4-byte little-endian length, then the
 * messages of one event-loop turn, each a tag byte and its fields. A codec
 * (owner-codec.ts) gives the messages every write sends a layout of their
 * own and V8-serializes the rest; this file has the byte-level writer and
 * reader it uses.
 *
 * A FrameWriter writes its frames into a slab of its own, each frame a slice
 * of it (as Node's Buffer pool does): a frame is handed to the socket and
 * must stay as it is until written, so a slab is never reused, only left to
 * the collector once a frame no longer fits.
 */

/** Writes a channel's messages into a frame and reads them back, one at a time. */
export interface FrameCodec<Out, In> {
  encode(message: Out, writer: FrameWriter): void;
  decode(reader: FrameReader): In;
}

const SLAB_BYTES = 64 * 1024;
export const FRAME_HEADER_BYTES = 4;
/** Strings up to this many UTF-16 units are given 3 bytes a unit (their UTF-8 bound) instead of being measured first. */
const MEASURE_FROM = 1024;

export class FrameWriter {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Where the frame being written starts in the slab. */
  private start = 0;
  private at = 0;

  /** Starts a frame: its length is filled in by end(). */
  begin(): void {
    this.start = this.at;
    this.reserve(FRAME_HEADER_BYTES);
    this.at += FRAME_HEADER_BYTES;
  }

  /** The frame written since begin(), header included. */
  end(): Buffer {
    const frame = this.slab.subarray(this.start, this.at);
    frame.writeUInt32LE(frame.length - FRAME_HEADER_BYTES, 0);
    // A slab grown for one large frame is that frame's alone: the next ones start a slab of the usual size.
    if (this.slab.length > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.at = 0;
    }
    this.start = this.at;
    return frame;
  }

  u8(value: number): void {
    this.reserve(1);
    this.slab[this.at++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.at = this.slab.writeUInt32LE(value, this.at);
  }

  /** A number (an id, a revision, a count): any double, NaN included. */
  f64(value: number): void {
    this.reserve(8);
    this.at = this.slab.writeDoubleLE(value, this.at);
  }

  /** UTF-8, after its length in bytes. */
  str(value: string): void {
    const bound = value.length <= MEASURE_FROM ? value.length * 3 : Buffer.byteLength(value, 'utf8');
    this.reserve(4 + bound);
    const written = this.slab.write(value, this.at + 4, bound, 'utf8');
    this.slab.writeUInt32LE(written, this.at);
    this.at += 4 + written;
  }

  /** Raw bytes, after their length. */
  bytes(value: Uint8Array): void {
    this.reserve(4 + value.length);
    this.slab.writeUInt32LE(value.length, this.at);
    this.slab.set(value, this.at + 4);
    this.at += 4 + value.length;
  }

  /** Room for `n` more bytes: a new slab (the frame so far copied to it) if this one is too short. */
  private reserve(n: number): void {
    if (this.at + n <= this.slab.length) return;
    const sofar = this.at - this.start;
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (sofar + n)));
    this.slab.copy(slab, 0, this.start, this.at);
    this.slab = slab;
    this.start = 0;
    this.at = sofar;
  }
}

/** Reads what a FrameWriter wrote, in the same order; a field past the end throws (a RangeError). */
export class FrameReader {
  private at: number;

  constructor(
    private readonly buffer: Buffer,
    start = 0,
    private readonly limit = buffer.length,
  ) {
    this.at = start;
  }

  get done(): boolean {
    return this.at >= this.limit;
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.at++];
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.at);
    this.at += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.buffer.readDoubleLE(this.at);
    this.at += 8;
    return value;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    const value = this.buffer.toString('utf8', this.at, this.at + n);
    this.at += n;
    return value;
  }

  /** A slice of the frame, not a copy: read it before the frame is let go of. */
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const value = this.buffer.subarray(this.at, this.at + n);
    this.at += n;
    return value;
  }

  private need(n: number): void {
    if (this.at + n > this.limit)
      throw new RangeError(`a frame field runs past the frame's end (${n} bytes at ${this.at} of ${this.limit})`);
  }
}
