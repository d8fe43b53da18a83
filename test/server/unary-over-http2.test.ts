/**
 * kv.v1's unary calls are served off the HTTP/2 stream in front of grpc-js
 * (src/server/unary-over-http2.ts). These are the framing rules that path
 * keeps as grpc-js does, driven by a plain node:http2 client so each rule
 * can be broken on purpose; the clients' tests (SDK, Go, Python, grpcurl)
 * cover ordinary calls.
 */
import http2 from 'node:http2';
import net from 'node:net';
import zlib from 'node:zlib';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { GetRequest, GetResponse, SetRequest, WatchRequest } from '../../src/gen/kv/v1/kv';
import { serveUnaryOverHttp2 } from '../../src/server/unary-over-http2';
import { writeAuthFile } from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const GET = '/kv.v1.KeyValueService/Get';
const SET = '/kv.v1.KeyValueService/Set';

interface Answer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status, from the trailers or (trailers-only) the headers. */
  status: number;
  message: string;
}

/** One gRPC frame around a message. */
function frame(message: Uint8Array, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Opens a call with the given request headers, writes `body` (if any) and ends the request unless `end` is false; resolves once the server has ended its side. */
function call(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer | undefined,
  headers: http2.OutgoingHttpHeaders = {},
  end = true,
): Promise<Answer> {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  return new Promise((resolve, reject) => {
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    // The answer is complete when the server ends its side (it may do so before the request is: a status sent early).
    stream.on('end', () => {
      // A request still open (the server answered early) is cancelled; others end by themselves (many
      // resets in a row would look like a rapid-reset attack to Node's HTTP/2 server).
      if (!stream.writableEnded) stream.close();
      const statusHeader = trailers['grpc-status'] ?? responseHeaders['grpc-status'];
      const message = trailers['grpc-message'] ?? responseHeaders['grpc-message'];
      resolve({
        headers: responseHeaders,
        trailers,
        body: Buffer.concat(chunks),
        status: Number(statusHeader),
        message: decodeURIComponent(String(message ?? '')),
      });
    });
    if (body !== undefined) stream.write(body);
    if (end) stream.end();
  });
}

let server: RunningServer;
let session: http2.ClientHttp2Session;

beforeAll(async () => {
  server = await startServer();
  session = http2.connect(`http://${server.address}`);
  const written = await call(session, SET, frame(SetRequest.encode(SetRequest.fromPartial({ key: 'k', value: { v: 1 } })).finish()));
  expect(written.status).toBe(status.OK);
});

afterAll(async () => {
  session.close();
  expect(await server.stop()).toBe(0);
});

test('a Get is answered as grpc-js answers: its headers, one message, OK trailers', async () => {
  const answer = await call(session, GET, frame(GetRequest.encode({ key: 'k' }).finish()));
  expect(answer.headers[':status']).toBe(200);
  expect(answer.headers['content-type']).toBe('application/grpc+proto');
  expect(answer.status).toBe(status.OK);
  expect(answer.body[0]).toBe(0);
  expect(answer.body.readUInt32BE(1)).toBe(answer.body.length - 5);
  expect(GetResponse.decode(answer.body.subarray(5)).entry).toMatchObject({ key: 'k', value: { v: 1 }, version: 1 });
});

test('an error is a trailers-only answer with the status, its message and kv-reason', async () => {
  const answer = await call(session, GET, frame(GetRequest.encode({ key: 'absent' }).finish()));
  expect(answer.body.length).toBe(0);
  expect(answer.headers['grpc-status']).toBe(String(status.NOT_FOUND));
  expect(answer.message).toBe('key "absent" not found');
  expect(answer.headers['kv-reason']).toBe('NOT_FOUND');
});

test('a unary call with no request message, half a message or two is UNIMPLEMENTED', async () => {
  const message = frame(GetRequest.encode({ key: 'k' }).finish());
  const none = await call(session, GET, undefined);
  const half = await call(session, GET, message.subarray(0, message.length - 1));
  const two = await call(session, GET, Buffer.concat([message, message]));
  for (const answer of [none, half, two]) expect(answer.status).toBe(status.UNIMPLEMENTED);
  expect(none.message).toMatch(/no request message/);
  expect(two.message).toMatch(/a second request message/);
});

test('an incomplete frame after the message is ignored, as grpc-js ignores it', async () => {
  const message = frame(GetRequest.encode({ key: 'k' }).finish());
  const answer = await call(session, GET, Buffer.concat([message, Buffer.from([0, 0, 0])]));
  expect(answer.status).toBe(status.OK);
});

test("a request message that is not the method's protobuf is INVALID_ARGUMENT", async () => {
  const answer = await call(session, GET, frame(Buffer.from([0x0a, 0x05, 0x61])));
  expect(answer.status).toBe(status.INVALID_ARGUMENT);
  expect(answer.message).toMatch(/request could not be decoded/);
});

test('a request larger than the message limit is RESOURCE_EXHAUSTED, and the server keeps serving', async () => {
  // The limit is at least 16 MiB (create-server.ts): send 17. (grpc-js refuses from the frame header, while the
  // client still sends, and Node then closes the connection: ENHANCE_YOUR_CALM instead of a status.)
  const big = frame(Buffer.alloc(17 * 1024 * 1024, 0x20));
  const answer = await call(session, SET, big);
  expect(answer.status).toBe(status.RESOURCE_EXHAUSTED);
  expect(answer.message).toMatch(/Received message larger than max \(\d+ vs \d+\)/);
  // A frame header that declares too much is refused from the header alone.
  const declared = Buffer.from([0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3]);
  const refused = await call(session, SET, declared);
  expect(refused.status).toBe(status.RESOURCE_EXHAUSTED);
  expect(refused.message).toMatch(/Received message larger than max \(2147483647 vs \d+\)/);
  expect((await call(session, GET, frame(GetRequest.encode({ key: 'k' }).finish()))).status).toBe(status.OK);
});

test('grpc-timeout: a deadline that passes before the request is complete is DEADLINE_EXCEEDED; a malformed one is INTERNAL', async () => {
  const startedAt = Date.now();
  const late = await call(session, GET, undefined, { 'grpc-timeout': '200m' }, false);
  expect(late.status).toBe(status.DEADLINE_EXCEEDED);
  expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
  const malformed = await call(session, GET, frame(GetRequest.encode({ key: 'k' }).finish()), { 'grpc-timeout': 'soon' });
  expect(malformed.status).toBe(status.INTERNAL);
  expect(malformed.message).toMatch(/Invalid grpc-timeout value "soon"/);
  const inTime = await call(session, GET, frame(GetRequest.encode({ key: 'k' }).finish()), { 'grpc-timeout': '5S' });
  expect(inTime.status).toBe(status.OK);
  // A year (as grpc-go sends a long deadline) is longer than any timer Node sets: no deadline, not an instant one.
  const aYear = await call(session, GET, frame(GetRequest.encode({ key: 'k' }).finish()), { 'grpc-timeout': '31536000S' });
  expect(aYear.status).toBe(status.OK);
  expect(server.output()).not.toMatch(/TimeoutOverflowWarning/);
});

test('a gzip-compressed request is still answered (grpc-js decompresses it)', async () => {
  const compressed = zlib.gzipSync(GetRequest.encode({ key: 'k' }).finish());
  const answer = await call(session, GET, frame(compressed, true), { 'grpc-encoding': 'gzip' });
  expect(answer.status).toBe(status.OK);
  expect(GetResponse.decode(answer.body.subarray(5)).entry?.value).toEqual({ v: 1 });
});

test('a connection kept busy with unary calls is not closed as idle; once they stop, it is', async () => {
  const idleServer = await startServer({ args: ['--max-connection-idle-ms', '400'] });
  const busy = http2.connect(`http://${idleServer.address}`);
  let goawayAt: number | undefined;
  busy.on('goaway', () => (goawayAt ??= Date.now()));
  busy.on('error', () => undefined);
  try {
    const request = frame(GetRequest.encode({ key: 'k' }).finish());
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      // One call at a time: between calls the connection has none open, as grpc-js counts.
      expect((await call(busy, GET, request)).status).toBe(status.NOT_FOUND);
    }
    expect(goawayAt).toBeUndefined();
    const stoppedAt = Date.now();
    await pollUntil('GOAWAY once the calls stopped', () => goawayAt, 5_000);
    expect(goawayAt! - stoppedAt).toBeGreaterThanOrEqual(300);
  } finally {
    busy.destroy();
    expect(await idleServer.stop()).toBe(0);
  }
});

test('a call whose connection is reset before its request is complete leaves no deadline timer (nor its request) behind', async () => {
  // In this process, so its timers can be counted: a grpc-js server with this path and one route that answers at once.
  const grpcServer = new Server();
  const credentials = ServerCredentials.createInsecure();
  const injector = grpcServer.createConnectionInjector(credentials);
  const answerAtOnce = (_: unknown, __: unknown, answer: (e: null, r: unknown) => void): void => answer(null, {});
  const route = {
    decode: (bytes: Buffer) => bytes,
    encode: () => Buffer.alloc(0),
    call: Object.assign(answerAtOnce, {
      admit: () => ({
        admitted: true as const,
        run: (request: unknown, answer: (e: null, r: unknown) => void) => answerAtOnce(request, request, answer),
        end: (answer: (error: object) => void, reply: object) => answer(reply),
      }),
    }),
  };
  serveUnaryOverHttp2(grpcServer, credentials, new Map([['/t.T/M', route]]), { maxReceiveBytes: 1 << 20, maxSendBytes: 1 << 20 });
  const tcp = net.createServer((socket) => injector.injectConnection(socket));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as net.AddressInfo).port;
  const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
  const before = timers();
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => sockets[sockets.push(net.connect(port, '127.0.0.1')) - 1],
    });
    session.on('error', () => undefined);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/t.T/M',
      'content-type': 'application/grpc',
      'grpc-timeout': '2000000S',
    });
    stream.on('error', () => undefined);
    stream.write(Buffer.from([0, 0, 0, 1, 0, 1, 2, 3])); // a frame that declares 64 KiB and sends 3 bytes of it
  }
  try {
    await pollUntil('the server to start the three calls (one deadline timer each)', () => (timers() >= before + 3 ? true : undefined));
    for (const socket of sockets) socket.resetAndDestroy();
    await pollUntil('the deadline timers to be cleared', () => (timers() <= before ? true : undefined), 5_000);
  } finally {
    grpcServer.forceShutdown();
    tcp.close();
  }
});

test('a grpc-js server without the HTTP/2 server this path expects is refused, not served another way', () => {
  const bare = new Server();
  expect(() => serveUnaryOverHttp2(bare, ServerCredentials.createInsecure(), new Map(), { maxReceiveBytes: 1, maxSendBytes: 1 })).toThrow(
    /grpc-js is not the version kv was built with/,
  );
});

describe('with an auth file', () => {
  let secured: RunningServer;
  let securedSession: http2.ClientHttp2Session;
  let token: string;

  beforeAll(async () => {
    const auth = writeAuthFile(makeTempDir('kv-unary-auth-'), {
      roles: { writer: [{ prefix: '', permission: 'write' }] },
      tokens: { app: 'writer' },
    });
    token = auth.tokens.app;
    secured = await startServer({ args: ['--auth-file', auth.file] });
    securedSession = http2.connect(`http://${secured.address}`);
  });

  afterAll(async () => {
    securedSession.close();
    expect(await secured.stop()).toBe(0);
  });

  test('a call without credentials is refused from its headers: its body is not waited for, nor kept', async () => {
    // A Set whose body promises 15 MiB and never ends: with no token it is answered within a second or so
    // (as on the HTTP port: its client may finish sending first), not held until the body ends.
    const startedAt = Date.now();
    const refused = await call(securedSession, SET, Buffer.from([0, 0x00, 0xf0, 0x00, 0x00, 1, 2, 3]), {}, false);
    expect(refused.status).toBe(status.UNAUTHENTICATED);
    expect(Date.now() - startedAt).toBeLessThan(5000);
    // A whole request with no token: answered as before, from the request gate.
    const whole = await call(securedSession, SET, frame(SetRequest.encode(SetRequest.fromPartial({ key: 'k', value: { v: 1 } })).finish()));
    expect(whole.status).toBe(status.UNAUTHENTICATED);
    // With the token the same call goes through, on the same connection.
    const written = await call(
      securedSession,
      SET,
      frame(SetRequest.encode(SetRequest.fromPartial({ key: 'k', value: { v: 2 } })).finish()),
      { authorization: `Bearer ${token}` },
    );
    expect(written.status).toBe(status.OK);
  });

  test('so are the calls grpc-js reads (a Watch, a compressed Set): refused from their headers, not after their requests', async () => {
    for (const [path, headers] of [
      ['/kv.v1.KeyValueService/Watch', {}],
      ['/kv.v1.KeyValueService/Backup', {}],
      [SET, { 'grpc-encoding': 'gzip' }],
    ] as const) {
      const startedAt = Date.now();
      const refused = await call(securedSession, path, Buffer.from([0, 0x00, 0xf0, 0x00, 0x00, 1, 2, 3]), headers, false);
      expect({ path, status: refused.status }).toEqual({ path, status: status.UNAUTHENTICATED });
      expect(Date.now() - startedAt).toBeLessThan(5000);
    }
    // With the token, a Watch reaches grpc-js and its handler as before.
    const watch = securedSession.request({
      ':method': 'POST',
      ':path': '/kv.v1.KeyValueService/Watch',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${token}`,
    });
    const first = new Promise<Buffer>((resolve, reject) => {
      watch.once('data', resolve);
      watch.once('error', reject);
    });
    watch.end(frame(WatchRequest.encode(WatchRequest.fromPartial({ prefix: '' })).finish()));
    expect((await first).length).toBeGreaterThan(5);
    watch.close();
  });
});
