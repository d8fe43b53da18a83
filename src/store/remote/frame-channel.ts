/**
 * The local channel between a worker process and the store owner: frames
 * over a unix socket, each a 4-byte little-endian length and the messages,
 * laid out by a codec (owner-codec.ts). Everything sent within one
 * event-loop turn goes out as ONE frame, so a burst of calls costs one
 * write and one wake-up at the other end, not one per call.
 */
import type net from 'node:net';
import { type FrameCodec, FRAME_HEADER_BYTES as HEADER_BYTES, FrameReader, FrameWriter } from './frame-codec';

export class FrameChannel<Out, In> {
  private outbox: Out[] = [];
  /** What the senders said the outbox's messages weigh (send's `bytes`), until they are written. */
  private outboxBytes = 0;
  private flushing = false;
  /** Resolves once the last frame written has been handed to the operating system. */
  private written: Promise<void> = Promise.resolve();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly writer = new FrameWriter();
  /** Called just before a frame is written: the last chance to add to it (the worker's read-index request). */
  beforeFlush: () => void = () => undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly receive: (messages: In[]) => void,
    private readonly codec: FrameCodec<Out, In>,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Queues a message for this turn's frame; `bytes`: about what it weighs, if it counts in backlogBytes. */
  send(message: Out, bytes = 0): void {
    this.outbox.push(message);
    this.outboxBytes += bytes;
    this.scheduleFlush();
  }

  /**
   * Bytes sent that the other end has not read yet, as far as this end can
   * tell: frames the socket holds because the peer does not take them, and
   * what this turn's frame will carry.
   */
  get backlogBytes(): number {
    return this.socket.writableLength + this.outboxBytes;
  }

  /** Writes this turn's frame now; resolves once every frame so far has left this process. */
  whenWritten(): Promise<void> {
    this.flush();
    return this.written;
  }

  /** Makes sure a frame goes out at the end of this turn, even if nothing was sent yet (beforeFlush may add to it). */
  scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    // setImmediate, not a microtask: every call that arrived in this turn's I/O joins the frame.
    setImmediate(() => this.flush());
  }

  /** Ends the socket once queued messages are written. */
  end(): void {
    this.flush();
    this.socket.end();
  }

  private flush(): void {
    this.flushing = false;
    this.beforeFlush();
    if (this.outbox.length === 0 || this.socket.destroyed) return;
    const outbox = this.outbox;
    this.outbox = [];
    this.outboxBytes = 0;
    this.writer.begin();
    for (const message of outbox) this.codec.encode(message, this.writer);
    const frame = this.writer.end();
    // Called once written, or with an error if the socket is destroyed first: either way it has left the queue.
    this.written = new Promise((resolve) => this.socket.write(frame, () => resolve()));
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER_BYTES) return;
      const size = this.head().readUInt32LE(0);
      if (this.buffered < HEADER_BYTES + size) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : this.merge();
      const rest = all.subarray(HEADER_BYTES + size);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.buffered = rest.length;
      const reader = new FrameReader(all, HEADER_BYTES, HEADER_BYTES + size);
      const messages: In[] = [];
      while (!reader.done) messages.push(this.codec.decode(reader));
      this.receive(messages);
    }
  }

  private head(): Buffer {
    return this.chunks[0].length >= HEADER_BYTES ? this.chunks[0] : this.merge();
  }

  private merge(): Buffer {
    const merged = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [merged];
    return merged;
  }
}
