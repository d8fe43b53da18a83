/**
 * The local channel between a worker process and the store owner: frames of
 * V8-serialized values over a unix socket, each a 4-byte little-endian
 * length and the body. Everything sent within one event-loop turn goes out
 * as ONE frame (an array of messages), so a burst of calls costs one write,
 * one serialization and one wake-up at the other end, not one per call.
 */
import type net from 'node:net';
import v8 from 'node:v8';

const HEADER_BYTES = 4;

export class FrameChannel<Out, In> {
  private outbox: Out[] = [];
  private flushing = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Called just before a frame is written: the last chance to add to it (the worker's read-index request). */
  beforeFlush: () => void = () => undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly receive: (messages: In[]) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Queues a message for this turn's frame. */
  send(message: Out): void {
    this.outbox.push(message);
    this.scheduleFlush();
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
    const body = v8.serialize(this.outbox);
    this.outbox = [];
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32LE(body.length, 0);
    this.socket.cork();
    this.socket.write(header);
    this.socket.write(body);
    this.socket.uncork();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER_BYTES) return;
      const size = this.head().readUInt32LE(0);
      if (this.buffered < HEADER_BYTES + size) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : this.merge();
      const body = all.subarray(HEADER_BYTES, HEADER_BYTES + size);
      const rest = all.subarray(HEADER_BYTES + size);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.buffered = rest.length;
      this.receive(v8.deserialize(body) as In[]);
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
