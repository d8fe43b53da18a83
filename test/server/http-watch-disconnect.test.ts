/**
 * A Watch on the HTTP port whose client stops reading and then goes away
 * ends: the open stream is counted down (CANCELLED, as on the gRPC port),
 * the watcher is released, and nothing is logged as a server error. It
 * stayed open for good when the server was waiting to write (connect-node
 * waits for a 'drain' that a destroyed socket never emits), holding its
 * buffers.
 */
import net from 'node:net';
import { create } from '@bufbuild/protobuf';
import { createContextValues, createHandlerContext } from '@connectrpc/connect';
import { Metadata, status } from '@grpc/grpc-js';
import { KeyValueService, WatchRequestSchema } from '../../src/gen/kv/v1/kv_pb';
import { type Access, openAccess } from '../../src/server/access';
import { NO_METHOD_OBSERVER } from '../../src/server/call-observer';
import { type GrpcDeps, OpenStreams } from '../../src/server/grpc-call';
import { authenticateRequest, CALLER, connectServerStream } from '../../src/server/http/connect-call';
import { CLIENT_GONE } from '../../src/server/http/node-adapter';
import { keyValueServiceDefinition } from '../../src/server/key-value-service';
import { silentLogger } from '../../src/logger';
import type { KeyValueStore } from '../../src/store/key-value-store';
import { encodeFrame, Flag, FrameType, PREFACE, RawHttp2Connection } from '../support/raw-http2';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';
import { scrapeWatchGauges, untilWatchClosed, untilWatching, type WatchGauges } from '../support/watch-gauges';

let server: RunningServer;

/** Far more than the socket buffers hold, so a client that stops reading leaves the server waiting to write. */
const KEYS = 30;
const VALUE = 'y'.repeat(800_000);

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'] });
  for (let i = 0; i < KEYS; i++) {
    const answer = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: `big/${i}`, value: VALUE }),
    });
    expect(answer.status).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const scrape = (): Promise<WatchGauges> => scrapeWatchGauges(server.metricsAddress as string);

/** A Connect streaming request's body: one envelope (flags 0, big-endian length, JSON). */
function envelope(message: object): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(5);
  header.writeUInt32BE(json.length, 1);
  return Buffer.concat([header, json]);
}

const WATCH = envelope({ prefix: 'big/', startRevision: '1' });

/** Opens a Watch over HTTP/1.1 on a raw socket, reads its first bytes, then stops reading. */
async function stalledHttp1Watch(headers: Record<string, string> = {}): Promise<net.Socket> {
  const [host, port] = splitAddress(server.httpAddress!);
  const socket = net.connect({ host, port });
  socket.on('error', () => undefined);
  const lines = [
    'POST /kv.v1.KeyValueService/Watch HTTP/1.1',
    `Host: ${server.httpAddress}`,
    'Content-Type: application/connect+json',
    `Content-Length: ${WATCH.length}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), WATCH]));
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.pause();
  return socket;
}

/**
 * The same over h2c, on a raw HTTP/2 connection whose windows let the server
 * send all it can: it is then held back by TCP, as by a client (curl
 * --limit-rate, say) that stops reading its socket.
 */
async function stalledHttp2Watch(): Promise<net.Socket> {
  const connection = await RawHttp2Connection.connect(server.httpAddress!);
  const most = 2 ** 31 - 1;
  const initialWindow = Buffer.alloc(6);
  initialWindow.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  initialWindow.writeUInt32BE(most, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(most - 65_535, 0);
  const headers = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', '/kv.v1.KeyValueService/Watch'],
    [':authority', server.httpAddress!],
    ['content-type', 'application/connect+json'],
  ].map(([name, value]) => hpackLiteral(name, value));
  connection.write(
    Buffer.concat([
      PREFACE,
      encodeFrame(FrameType.SETTINGS, 0, 0, initialWindow),
      encodeFrame(FrameType.WINDOW_UPDATE, 0, 0, increment),
      encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.concat(headers)),
      encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, WATCH),
    ]),
  );
  await connection.waitFor('the first bytes of the answer', (frame) => frame.type === FrameType.DATA && frame.streamId === 1);
  connection.socket.pause();
  return connection.socket;
}

/** An HPACK literal header field without indexing, new name, no Huffman coding (RFC 7541 6.2.2), for names and values under 127 bytes. */
function hpackLiteral(name: string, value: string): Buffer {
  const text = (part: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(part)]), Buffer.from(part)]);
  return Buffer.concat([Buffer.from([0]), text(name), text(value)]);
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

/** Waits until the one Watch that `before` did not have is open and watching. */
const watching = (before: WatchGauges): Promise<void> => untilWatching(server.metricsAddress as string, before);

/** Waits until the Watch has ended as the gRPC port ends one whose client went away. */
async function endedCancelled(before: WatchGauges): Promise<void> {
  const after = await untilWatchClosed(server.metricsAddress as string, before);
  expect(after.cancelled).toBe(before.cancelled + 1);
  expect(server.output()).not.toMatch(/unexpected error|answering a call failed/);
}

/** How the client's connection ends: closed (FIN), or reset (RST, as when a killed client leaves unread bytes behind). */
const ENDINGS = [
  ['closes', (socket: net.Socket) => socket.destroy()],
  ['resets', (socket: net.Socket) => socket.resetAndDestroy()],
] as const;

test.each(ENDINGS)('an HTTP/1.1 Watch whose client stops reading and %s its connection ends, counted CANCELLED', async (_, hangUp) => {
  const before = await scrape();
  const socket = await stalledHttp1Watch();
  await watching(before);
  hangUp(socket);
  await endedCancelled(before);
});

test.each(ENDINGS)('an h2c Watch whose client stops reading and %s its connection ends, counted CANCELLED', async (_, hangUp) => {
  const before = await scrape();
  const socket = await stalledHttp2Watch();
  await watching(before);
  hangUp(socket);
  await endedCancelled(before);
});

test('a Watch past its deadline whose client is not reading ends once the client goes away', async () => {
  const before = await scrape();
  // Long enough for the server to fill the socket buffers and wait to write before the deadline passes, even on a loaded machine.
  const socket = await stalledHttp1Watch({ 'Connect-Timeout-Ms': '3000' });
  // The watch was open once its first bytes came (stalledHttp1Watch waited for them), so a watcher count back where it was
  // means the deadline ended it (its watcher is released); its status cannot be written to a client that does not read.
  await pollUntil('the deadline to end the watcher', async () => ((await scrape()).watchers === before.watchers ? true : undefined));
  socket.destroy();
  const after = await pollUntil('the Watch to be counted closed', async () => {
    const now = await scrape();
    return now.open === before.open ? now : undefined;
  });
  expect(after.deadline).toBe(before.deadline + 1);
  expect(after.cancelled).toBe(before.cancelled);
  expect(server.output()).not.toMatch(/unexpected error|answering a call failed/);
});

test('a stream whose client is gone before its call begins is not started, and is counted and audited once', async () => {
  const gone = new AbortController();
  gone.abort();
  const values = createContextValues();
  values.set(CALLER, { metadata: new Metadata(), peer: '127.0.0.1:1' });
  values.set(CLIENT_GONE, gone.signal);
  const context = createHandlerContext({
    service: KeyValueService,
    method: KeyValueService.method.watch,
    protocolName: 'connect',
    requestMethod: 'POST',
    url: 'http://127.0.0.1/kv.v1.KeyValueService/Watch',
    contextValues: values,
  });
  const seen: string[] = [];
  const access: Access = {
    ...openAccess,
    key: (_, key) => void seen.push(`key ${key}`),
    prefix: (_, prefix) => void seen.push(`prefix ${prefix}`),
    finished: (code) => void seen.push(`finished ${code}`),
  };
  const deps: GrpcDeps = {
    store: {} as KeyValueStore, // never reached: the handler below records its call instead
    logger: silentLogger,
    authenticate: () => access,
    onStoreFailed: () => undefined,
    streams: new OpenStreams(),
  };
  authenticateRequest(deps, () => NO_METHOD_OBSERVER)(context);
  const watch = connectServerStream(
    KeyValueService.method.watch,
    keyValueServiceDefinition().watch,
    (call) => {
      seen.push('started');
      call.access.prefix('read', 'big/');
      return Promise.resolve();
    },
    deps,
    'open-ended',
  );
  const answers: unknown[] = [];
  for await (const answer of watch(create(WatchRequestSchema), context)) answers.push(answer);
  expect(answers).toEqual([]);
  expect(seen).toEqual([`finished ${status.CANCELLED}`]);
});
