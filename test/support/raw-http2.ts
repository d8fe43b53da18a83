/**
 * A raw HTTP/2 client over a plain TCP socket, for testing what the server
 * does to connections that misbehave: a client that sends half a preface,
 * stops answering pings, opens too many streams or idles. It writes frames
 * byte by byte (RFC 9113) and records every frame the server sends; header
 * blocks it sends are HPACK literals, and those it receives are not decoded.
 */
import net from 'node:net';
import { pollUntil } from './temp-dirs';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** Date.now() when it arrived. */
  at: number;
}

export function encodeFrame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** GOAWAY's last stream id and error code. */
export function goawayOf(frame: Frame): { lastStreamId: number; errorCode: number } {
  return { lastStreamId: frame.payload.readUInt32BE(0) & 0x7fffffff, errorCode: frame.payload.readUInt32BE(4) };
}

export interface RawConnectionOptions {
  /** Answer the server's PINGs (default true): a client that does not is one whose peer vanished. */
  answerPings?: boolean;
}

export class RawHttp2Connection {
  readonly frames: Frame[] = [];
  /** Date.now() when the server closed the connection (or it broke), else undefined. */
  closedAt: number | undefined;
  private buffered = Buffer.alloc(0);
  private pings = 0;

  private constructor(
    readonly socket: net.Socket,
    private readonly options: RawConnectionOptions,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closedAt = Date.now()));
  }

  /** A TCP connection to host:port that has sent nothing yet. */
  static async connect(address: string, options: RawConnectionOptions = {}): Promise<RawHttp2Connection> {
    const colon = address.lastIndexOf(':');
    const socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawHttp2Connection(socket, options);
  }

  /** connect(), then the preface and an empty SETTINGS, and waits for the server's SETTINGS (which is acknowledged). */
  static async open(address: string, options: RawConnectionOptions = {}): Promise<RawHttp2Connection> {
    const connection = await RawHttp2Connection.connect(address, options);
    connection.write(Buffer.concat([PREFACE, encodeFrame(FrameType.SETTINGS, 0, 0)]));
    await connection.waitFor('the server SETTINGS acknowledging ours', (f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    return connection;
  }

  get isClosed(): boolean {
    return this.closedAt !== undefined;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** HEADERS opening a gRPC call on `streamId` (odd, increasing) to `path`, e.g. /kv.v1.KeyValueService/Get. */
  openCall(streamId: number, path: string, authority: string): void {
    this.openRequest(streamId, path, authority, [
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]);
  }

  /** HEADERS opening a POST to `path` on `streamId` with these headers, its body still to be sent. */
  openRequest(streamId: number, path: string, authority: string, headers: [string, string][]): void {
    const fields: [string, string][] = [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', authority], ...headers];
    const block = Buffer.concat(fields.map(([name, value]) => hpackLiteral(name, value)));
    this.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, streamId, block));
  }

  /** A PING, resolving once the server has answered it: every frame sent before it has been read by then. */
  async ping(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pings, 0);
    this.write(encodeFrame(FrameType.PING, 0, 0, payload));
    await this.waitFor('the PING answered', (f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0 && f.payload.equals(payload));
  }

  /** One gRPC message (uncompressed) on `streamId`, ending the request side if `end`. */
  sendMessage(streamId: number, message: Buffer, end: boolean): void {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    this.write(encodeFrame(FrameType.DATA, end ? Flag.END_STREAM : 0, streamId, Buffer.concat([prefix, message])));
  }

  /** The first frame (already received or still to come) that `matches`; rejects if the connection closes first. */
  waitFor(what: string, matches: (frame: Frame) => boolean, ms = 10_000): Promise<Frame> {
    return pollUntil(
      what,
      () => {
        const frame = this.frames.find(matches);
        if (frame === undefined && this.isClosed) throw new Error(`the server closed the connection before ${what}`);
        return frame;
      },
      ms,
    );
  }

  /** Resolves with Date.now() of the close once the server has closed the connection. */
  waitForClose(what: string, ms = 10_000): Promise<number> {
    return pollUntil(what, () => this.closedAt, ms);
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) return;
      const frame: Frame = {
        type: this.buffered[3],
        flags: this.buffered[4],
        streamId: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffered.subarray(9, 9 + length),
        at: Date.now(),
      };
      this.buffered = this.buffered.subarray(9 + length);
      this.frames.push(frame);
      this.respond(frame);
    }
  }

  /** What every client does unasked: acknowledge SETTINGS, and (unless told not to) answer PINGs. */
  private respond(frame: Frame): void {
    if (this.socket.destroyed) return;
    const ack = (frame.flags & Flag.ACK) !== 0;
    if (frame.type === FrameType.SETTINGS && !ack) this.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    if (frame.type === FrameType.PING && !ack && this.options.answerPings !== false) {
      this.write(encodeFrame(FrameType.PING, Flag.ACK, 0, frame.payload));
    }
  }
}

/** An HPACK "literal header field without indexing, new name", no Huffman coding (RFC 7541 6.2.2). */
function hpackLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), hpackString(name), hpackString(value)]);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length: number[] = [];
  // A 7-bit prefix integer (RFC 7541 5.1).
  if (bytes.length < 127) {
    length.push(bytes.length);
  } else {
    length.push(127);
    let rest = bytes.length - 127;
    while (rest >= 128) {
      length.push((rest % 128) + 128);
      rest = Math.floor(rest / 128);
    }
    length.push(rest);
  }
  return Buffer.concat([Buffer.from(length), bytes]);
}

/** A call whose request never ends, so it is in flight until the server cancels it; resolves once the server holds it. */
export async function callNeverFinished(address: string, path: string): Promise<RawHttp2Connection> {
  const connection = await RawHttp2Connection.open(address);
  connection.openCall(1, path, address);
  // Frames are handled in order: once our PING is answered, the server holds the call.
  await connection.ping();
  return connection;
}
