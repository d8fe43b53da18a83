/**
 * A client that closes its connection while a large answer is being written
 * (a browser tab shut during a Watch of values of about 1 MiB, curl stopped
 * mid-List) is not a server fault: the call ends (a Watch counted CANCELLED,
 * its watcher released) and the server logs it at debug level, without a
 * stack. The HTTP port used to log "answering a call failed" at warn level
 * with an EPIPE stack trace: a client that closes its connection (FIN) and
 * then answers the server's next bytes with a reset makes the server's
 * pending write fail with EPIPE, which connect-node reports as INTERNAL.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { create, toBinary } from '@bufbuild/protobuf';
import { WatchRequestSchema } from '../../src/gen/kv/v1/kv_pb';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';
import { scrapeWatchGauges, untilWatchClosed, untilWatching, type WatchGauges } from '../support/watch-gauges';

let server: RunningServer;

/** Ten values of about 1 MiB, Set at once: far more than the socket buffers hold. */
const VALUES = 10;
const VALUE = 'v'.repeat(1_000_000);

beforeAll(async () => {
  server = await startServer({
    args: ['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
    env: { KV_LOG_LEVEL: 'debug' },
  });
  await setValues('stored/');
}, 60_000);

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function setValues(prefix: string): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: VALUES }, (_, i) =>
      fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: `${prefix}${i}`, value: VALUE }),
      }),
    ),
  );
  for (const answer of answers) expect(answer.status).toBe(200);
}

const scrape = (): Promise<WatchGauges> => scrapeWatchGauges(server.metricsAddress as string);

interface LogLine {
  level: number;
  msg: string;
  rpc?: string;
  err?: unknown;
}

/** The server's JSON log lines written (whole) since `offset` (a length of server.output()). */
function logLinesSince(offset: number): LogLine[] {
  const output = server.output();
  return output
    .slice(offset, output.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** That the client's leaving since `offset` was logged at debug level without a stack, and nothing as a failure (warn or above). */
async function loggedAsClientGone(offset: number, rpc: string): Promise<void> {
  const seen = await pollUntil('the server to log the call that lost its client', () => {
    const lines = logLinesSince(offset).filter((line) => line.rpc === rpc);
    return lines.length > 0 ? lines : undefined;
  });
  expect(seen.filter((line) => line.level >= 40 || line.err !== undefined)).toEqual([]);
  expect(seen[0]).toMatchObject({ level: 20, msg: 'HTTP port: the client went away before its answer was complete' });
  expect(logLinesSince(offset).filter((line) => line.level >= 40 || line.err !== undefined)).toEqual([]);
}

/** A Connect or gRPC-Web streaming request's body: one frame (flags 0, big-endian length, the message). */
function frame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function connect(address: string): net.Socket {
  const colon = address.lastIndexOf(':');
  const socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
  socket.on('error', () => undefined);
  return socket;
}

/**
 * Sends an HTTP/1.1 request on a raw socket and, in the read that brings
 * its answer past `bytes` (on a fast loopback the whole answer can come
 * within one poll), has the client leave: `leave`.
 */
function http1Request(path: string, contentType: string, body: Buffer, bytes: number, leave: (socket: net.Socket) => void): Promise<void> {
  const socket = connect(server.httpAddress!);
  const head = [`POST ${path} HTTP/1.1`, `Host: ${server.httpAddress}`, `Content-Type: ${contentType}`, `Content-Length: ${body.length}`];
  socket.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body]));
  let received = 0;
  return new Promise((resolve) => {
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      if (received <= bytes) return;
      socket.off('data', count);
      leave(socket);
      resolve();
    };
    socket.on('data', count);
  });
}

/**
 * A client that stops reading and closes its connection (FIN), as a browser
 * does once its reads are done, then resets on the bytes that still come:
 * the server's write that was waiting fails with EPIPE.
 */
function stopAndClose(socket: net.Socket): void {
  socket.pause();
  socket.end(() => socket.destroy());
}

/** Waits until the one Watch that `before` did not have is open and watching. */
const watching = (before: WatchGauges): Promise<void> => untilWatching(server.metricsAddress as string, before);

/** Waits until the Watch has ended as one whose client went away: counted closed, CANCELLED, its watcher released. */
async function endedCancelled(before: WatchGauges): Promise<void> {
  const after = await untilWatchClosed(server.metricsAddress as string, before);
  expect(after.cancelled).toBe(before.cancelled + 1);
}

test.each(['application/connect+json', 'application/grpc-web+json'])(
  'an HTTP/1.1 Watch (%s) whose client stops reading and closes its connection while large values arrive ends CANCELLED, logged without a stack',
  async (contentType) => {
    const prefix = `live-${contentType.split('/')[1]}/`;
    const before = await scrape();
    const offset = server.output().length;
    const body = frame(Buffer.from(JSON.stringify({ prefix })));
    // Mid-message: the values come as they are set, each larger than what one read brings in.
    const left = http1Request('/kv.v1.KeyValueService/Watch', contentType, body, 1_500_000, stopAndClose);
    await watching(before);
    await setValues(prefix);
    await left;
    await endedCancelled(before);
    await loggedAsClientGone(offset, '/kv.v1.KeyValueService/Watch');
  },
);

test('an HTTP/1.1 Watch replaying history whose client stops reading and closes its connection mid-message ends CANCELLED, logged without a stack', async () => {
  const before = await scrape();
  const offset = server.output().length;
  const body = frame(Buffer.from(JSON.stringify({ prefix: 'stored/', startRevision: '1' })));
  await http1Request('/kv.v1.KeyValueService/Watch', 'application/connect+json', body, 1_500_000, stopAndClose);
  await endedCancelled(before);
  await loggedAsClientGone(offset, '/kv.v1.KeyValueService/Watch');
});

test('a unary call whose HTTP/1.1 client stops reading its large answer and closes its connection is logged without a stack', async () => {
  const offset = server.output().length;
  const body = Buffer.from(JSON.stringify({ prefix: 'stored/' }));
  await http1Request('/kv.v1.KeyValueService/List', 'application/json', body, 0, stopAndClose);
  await loggedAsClientGone(offset, '/kv.v1.KeyValueService/List');
});

test('a gRPC Watch whose client closes its connection mid-message ends CANCELLED, with nothing logged as a failure', async () => {
  const before = await scrape();
  const offset = server.output().length;
  const socket = connect(server.address);
  const session = http2.connect(`http://${server.address}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': '/kv.v1.KeyValueService/Watch',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.on('error', () => undefined);
  const request = create(WatchRequestSchema, { target: { case: 'prefix', value: 'stored/' }, startRevision: 1n });
  stream.end(frame(toBinary(WatchRequestSchema, request)));
  let received = 0;
  await new Promise<void>((resolve) => {
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      if (received <= 1_500_000) return;
      stream.off('data', count);
      // Closed (FIN) mid-message, then reset on the bytes that still come, as over HTTP/1.1 above.
      stopAndClose(socket);
      resolve();
    };
    stream.on('data', count);
  });
  await endedCancelled(before);
  expect(logLinesSince(offset).filter((line) => line.level >= 40 || line.err !== undefined)).toEqual([]);
});
