/**
 * The connection limits on the HTTP port, through raw sockets against the
 * real server, as connection-limits.test.ts does for the gRPC port: the
 * handshake deadline (plaintext HTTP/1.1 and HTTP/2, and TLS), the cap on
 * connections (counted for this port alone), streams per HTTP/2
 * connection, idle connections, pings, age, and idle HTTP/1.1 connections
 * over TLS. Each is closed or refused; the server goes on serving.
 */
import net from 'node:net';
import tls from 'node:tls';
import { KvClient } from '@kv/client';
import { ErrorCode, type Frame, FrameType, Flag, PREFACE, RawHttp2Connection, encodeFrame, goawayOf } from '../support/raw-http2';
import { type RunningServer, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';
import { makeTestCertificates } from '../support/test-certificates';

const isGoaway = (f: Frame): boolean => f.type === FrameType.GOAWAY;
const isPing = (f: Frame): boolean => f.type === FrameType.PING && (f.flags & Flag.ACK) === 0;

async function withServer(args: string[], run: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0', ...args], env: { KV_LOG_LEVEL: 'debug' } });
  try {
    await run(server);
  } finally {
    expect(await server.stop()).toBe(0);
  }
}

/** The HTTP port still answers a plain JSON call, and the gRPC port a gRPC one. */
async function expectServing(server: RunningServer): Promise<void> {
  const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: 'still', value: 'serving' }),
  });
  expect(response.status).toBe(200);
  const kv = new KvClient(server.address);
  try {
    expect(await kv.set('still', 'serving')).toBeGreaterThan(0);
  } finally {
    kv.close();
  }
}

/** A TCP connection that sends nothing; resolves with when it connected and, later, when the server closed it. */
async function silentConnection(address: string): Promise<{ connectedAt: number; closed: Promise<number> }> {
  const [host, port] = address.split(':');
  const socket = net.connect({ host, port: Number(port) });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  const connectedAt = await new Promise<number>((resolve) => socket.once('connect', () => resolve(Date.now())));
  return { connectedAt, closed };
}

/** HEADERS opening a Connect streaming call (protobuf) on `streamId`, with the literal HPACK encoding raw-http2.ts uses. */
function openConnectStream(connection: RawHttp2Connection, streamId: number, path: string, authority: string): void {
  const literal = (name: string, value: string): Buffer => {
    const string = (text: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(text)]), Buffer.from(text)]);
    return Buffer.concat([Buffer.from([0]), string(name), string(value)]);
  };
  const block = Buffer.concat(
    [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', authority],
      ['content-type', 'application/connect+proto'],
    ].map(([name, value]) => literal(name, value)),
  );
  connection.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, streamId, block));
  // One enveloped WatchRequest{prefix: ""} (every key), ending the request.
  const message = Buffer.from([0x12, 0x00]);
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
  connection.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, streamId, envelope));
}

const WATCH = '/kv.v1.KeyValueService/Watch';

test('a connection that sends no request, part of one, or part of the HTTP/2 preface is closed after --handshake-timeout-ms; whole ones are served', async () => {
  await withServer(['--handshake-timeout-ms', '500'], async (server) => {
    const address = server.httpAddress!;
    const silent = await silentConnection(address);
    const halfRequest = await RawHttp2Connection.connect(address);
    halfRequest.write(Buffer.from('POST /kv.v1.KeyValueService/Get HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    const halfPreface = await RawHttp2Connection.connect(address);
    halfPreface.write(PREFACE.subarray(0, 20));
    const http2 = await RawHttp2Connection.open(address);

    expect((await silent.closed) - silent.connectedAt).toBeGreaterThanOrEqual(450);
    await halfRequest.waitForClose('the connection with half a request to be closed');
    await halfPreface.waitForClose('the connection with half a preface to be closed');
    expect(http2.isClosed).toBe(false);
    expect(server.output()).toContain('HTTP port: closed a connection that sent no request in time');
    http2.close();
    await expectServing(server);
  });
});

test('with TLS, a connection that does not finish its handshake, or sends no request after it, is closed after --handshake-timeout-ms; one past --max-connections at once', async () => {
  const certificates = makeTestCertificates();
  const args = [
    '--tls-cert',
    certificates.serverCert,
    '--tls-key',
    certificates.serverKey,
    '--handshake-timeout-ms',
    '500',
    '--max-connections',
    '3',
    // Every connection here is from 127.0.0.1: no cap per address, so the port's own cap is what refuses.
    '--max-connections-per-address',
    '0',
  ];
  await withServer(args, async (server) => {
    const [host, port] = server.httpAddress!.split(':');
    const silent = await silentConnection(server.httpAddress!);
    const connect = (alpn: string): Promise<tls.TLSSocket> =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({ host, port: Number(port), ca: certificates.read(certificates.caCert), ALPNProtocols: [alpn] }, () =>
          resolve(socket),
        );
        socket.once('error', reject);
        socket.resume(); // reads, so that the server's close is seen
      });
    const quiet = await Promise.all(['http/1.1', 'h2'].map(connect));
    const closedAt = quiet.map((socket) => new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now()))));
    const handshakeDoneAt = Date.now();
    // Three are open: a fourth is closed as soon as it is accepted, long before any deadline.
    const extra = await silentConnection(server.httpAddress!);
    expect((await extra.closed) - extra.connectedAt).toBeLessThan(400);

    const silentFor = (await silent.closed) - silent.connectedAt;
    expect(silentFor).toBeGreaterThanOrEqual(450);
    expect(silentFor).toBeLessThan(5_000); // Node's own default is 120 s
    for (const closed of closedAt) expect((await closed) - handshakeDoneAt).toBeGreaterThanOrEqual(400);
    await expectServingTls(server.httpAddress!, certificates.read(certificates.caCert));
  });
});

/** An HTTP/1.1 request over TLS gets an answer, and the connection is then kept only while it is used. */
async function expectServingTls(address: string, ca: Buffer): Promise<void> {
  const [host, port] = address.split(':');
  const socket = tls.connect({ host, port: Number(port), ca, ALPNProtocols: ['http/1.1'] });
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  socket.write('HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await pollUntil('an answer over TLS', () => (answer.startsWith('HTTP/1.1 ') ? true : undefined));
  socket.destroy();
}

test('an HTTP/1.1 connection over TLS that stays idle after a request is closed (it was kept for good)', async () => {
  const certificates = makeTestCertificates();
  const args = ['--tls-cert', certificates.serverCert, '--tls-key', certificates.serverKey, '--max-connection-idle-ms', '500'];
  await withServer(args, async (server) => {
    const [host, port] = server.httpAddress!.split(':');
    const socket = tls.connect({ host, port: Number(port), ca: certificates.read(certificates.caCert), ALPNProtocols: ['http/1.1'] });
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.write('HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await pollUntil('the answer', () => (answer.includes('\r\n\r\n') ? true : undefined));
    const answeredAt = Date.now();
    expect(answer).toMatch(/^HTTP\/1\.1 \d{3} /); // 404 where the console is not built
    const idleFor =
      (await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), 4_000))])) - answeredAt;
    expect(idleFor).toBeGreaterThanOrEqual(400);
    expect(idleFor).toBeLessThan(4_000);
  });
});

test('connections past --max-connections are closed at once and logged, counted for the HTTP port alone; one is taken again once another closes', async () => {
  await withServer(['--max-connections', '3', '--max-connections-per-address', '0'], async (server) => {
    const address = server.httpAddress!;
    const held = await Promise.all([1, 2, 3].map(() => RawHttp2Connection.open(address)));
    const extra = await RawHttp2Connection.connect(address);
    extra.write(PREFACE);
    await extra.waitForClose('the connection past the limit to be closed');
    expect(extra.frames).toEqual([]);
    await pollUntil('the refusal to be logged', () =>
      server.output().includes('HTTP port: refused 1 connection(s): 3 are open') ? true : undefined,
    );
    // The gRPC port counts its own.
    const kv = new KvClient(server.address);
    try {
      expect(await kv.set('grpc', 'still')).toBeGreaterThan(0);
    } finally {
      kv.close();
    }

    held[0].close();
    await pollUntil('a connection to be taken again', async () => {
      const again = await RawHttp2Connection.open(address).catch(() => undefined);
      again?.close();
      return again;
    });
    for (const connection of held) connection.close();
    await pollUntil('the closed connections to be let go', async () => {
      const probe = await RawHttp2Connection.open(address).catch(() => undefined);
      probe?.close();
      return probe;
    });
    await expectServing(server);
  });
});

test('HTTP/2: --max-concurrent-streams is announced and a stream past it refused; idle connections get GOAWAY; ones that do not answer pings are closed', async () => {
  const args = [
    '--max-concurrent-streams',
    '2',
    '--max-connection-idle-ms',
    '500',
    '--keepalive-time-ms',
    '300',
    '--keepalive-timeout-ms',
    '300',
  ];
  await withServer(args, async (server) => {
    const address = server.httpAddress!;
    const greedy = await RawHttp2Connection.open(address);
    const settings = greedy.frames.find((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0)!;
    const announced = new Map<number, number>();
    for (let at = 0; at + 6 <= settings.payload.length; at += 6)
      announced.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    expect(announced.get(0x3)).toBe(2); // SETTINGS_MAX_CONCURRENT_STREAMS
    for (const stream of [1, 3, 5]) openConnectStream(greedy, stream, WATCH, address);
    const refusal = await greedy.waitFor(
      'the third stream refused',
      (f) => (f.type === FrameType.RST_STREAM && f.streamId === 5) || isGoaway(f),
    );
    // nghttp2 refuses the stream, or (the client acknowledged the limit) ends the connection, naming the last stream it took.
    if (refusal.type === FrameType.RST_STREAM) expect(refusal.payload.readUInt32BE(0)).toBe(ErrorCode.REFUSED_STREAM);
    else expect(goawayOf(refusal).lastStreamId).toBe(3);
    greedy.close();

    const busy = await RawHttp2Connection.open(address);
    const busySince = Date.now();
    openConnectStream(busy, 1, WATCH, address);

    const idle = await RawHttp2Connection.open(address);
    const openedAt = Date.now();
    const deaf = await RawHttp2Connection.open(address, { answerPings: false });
    openConnectStream(deaf, 1, WATCH, address); // a call open: not idle, so only the unanswered ping closes it
    const goaway = await idle.waitFor('GOAWAY on the idle connection', isGoaway);
    expect(goawayOf(goaway).errorCode).toBe(ErrorCode.NO_ERROR);
    expect(goaway.at - openedAt).toBeGreaterThanOrEqual(450);
    await idle.waitForClose('the idle connection to be closed');

    const ping = await deaf.waitFor('a keepalive ping', isPing);
    const deafClosedAt = await deaf.waitForClose('the connection that does not answer pings to be closed');
    expect(deafClosedAt - ping.at).toBeGreaterThanOrEqual(250);
    expect(deaf.frames.filter(isGoaway)).toEqual([]);

    // A connection with a call open, past twice the idle limit, pinged and answering: still there.
    await pollUntil('two pings on the busy connection', () => (busy.frames.filter(isPing).length >= 2 ? true : undefined));
    await pollUntil('twice the idle limit', () => (Date.now() - busySince > 1000 ? true : undefined));
    expect(busy.frames.filter(isGoaway)).toEqual([]);
    expect(busy.isClosed).toBe(false);
    busy.close();
    await expectServing(server);
  });
});

test('HTTP/2: after --max-connection-age-ms a connection gets GOAWAY, and is closed when the grace ends', async () => {
  await withServer(['--max-connection-age-ms', '500', '--max-connection-age-grace-ms', '1000'], async (server) => {
    const address = server.httpAddress!;
    const old = await RawHttp2Connection.open(address);
    openConnectStream(old, 1, WATCH, address); // a stream that never ends by itself
    const goaway = await old.waitFor('GOAWAY for age', isGoaway, 5_000);
    expect(goawayOf(goaway).errorCode).toBe(ErrorCode.NO_ERROR);
    const closedAt = await old.waitForClose('the old connection to be closed once the grace ends');
    expect(closedAt - goaway.at).toBeGreaterThanOrEqual(900);
    await expectServing(server);
  });
});
