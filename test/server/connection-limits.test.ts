/**
 * Connection limits, through raw sockets against the real server: half a
 * preface, a client that stops answering pings, idle connections, old
 * connections with calls in flight, too many streams on one connection, too
 * many connections. Each is closed or refused; the server goes on serving.
 * Plus the TLS handshake deadline, on grpc-js TLS credentials.
 */
import dns from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import pino from 'pino';
import { KvClient } from '@kv/client';
import { type ConnectionLimits, listenWithLimits } from '../../src/server/connection-limits';
import { ErrorCode, type Frame, FrameType, PREFACE, RawHttp2Connection, goawayOf } from '../support/raw-http2';
import { type RunningServer, runServerToExit, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { makeTestCertificates } from '../support/test-certificates';

const WATCH = '/kv.v1.KeyValueService/Watch';
const SET = '/kv.v1.KeyValueService/Set';
/** WatchRequest{prefix: ""}: every key. */
const WATCH_ALL = Buffer.from([0x12, 0x00]);
/** SetRequest{key: "k", value: "v"}. */
const SET_K = Buffer.from([0x0a, 0x01, 0x6b, 0x12, 0x03, 0x1a, 0x01, 0x76]);

const isGoaway = (f: Frame): boolean => f.type === FrameType.GOAWAY;
const isPing = (f: Frame): boolean => f.type === FrameType.PING && (f.flags & 0x1) === 0;

/** The server still serves a well-behaved client. */
async function expectServing(server: RunningServer): Promise<void> {
  const kv = new KvClient(server.address);
  try {
    expect(await kv.set('still', 'serving')).toBeGreaterThan(0);
  } finally {
    kv.close();
  }
}

async function withServer(args: string[], run: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await startServer({ args, env: { KV_LOG_LEVEL: 'debug' } });
  try {
    await run(server);
  } finally {
    expect(await server.stop()).toBe(0);
  }
}

test('a connection that sends half an HTTP/2 preface (or nothing) is closed after --handshake-timeout-ms; a full one is not', async () => {
  await withServer(['--handshake-timeout-ms', '500'], async (server) => {
    const half = await RawHttp2Connection.connect(server.address);
    const halfAt = Date.now();
    half.write(PREFACE.subarray(0, 12));
    const silent = await RawHttp2Connection.connect(server.address);
    const full = await RawHttp2Connection.open(server.address);

    const closedAfter = (await half.waitForClose('the half-preface connection to be closed')) - halfAt;
    expect(closedAfter).toBeGreaterThanOrEqual(450);
    await silent.waitForClose('the silent connection to be closed');
    expect(half.frames).toEqual([]);
    expect(full.isClosed).toBe(false);
    expect(server.output()).toContain('closed a connection that sent no HTTP/2 preface in time');
    full.close();
    await expectServing(server);
  });
});

test('a client that stops answering pings is closed after --keepalive-time-ms + --keepalive-timeout-ms; one that answers stays', async () => {
  await withServer(['--keepalive-time-ms', '300', '--keepalive-timeout-ms', '300'], async (server) => {
    const deaf = await RawHttp2Connection.open(server.address, { answerPings: false });
    const answering = await RawHttp2Connection.open(server.address);
    const ping = await deaf.waitFor('a keepalive ping', isPing);
    const closedAt = await deaf.waitForClose('the connection that does not answer pings to be closed');
    expect(closedAt - ping.at).toBeGreaterThanOrEqual(250);
    await pollUntil('four pings answered', () => (answering.frames.filter(isPing).length >= 4 ? true : undefined));
    expect(answering.isClosed).toBe(false);
    answering.close();
    await expectServing(server);
  });
});

test('a connection without calls is sent GOAWAY and closed after --max-connection-idle-ms; one with a call open is not', async () => {
  await withServer(['--max-connection-idle-ms', '500'], async (server) => {
    const busy = await RawHttp2Connection.open(server.address);
    busy.openCall(1, WATCH, server.address);
    busy.sendMessage(1, WATCH_ALL, true);
    const idle = await RawHttp2Connection.open(server.address);
    const openedAt = Date.now();
    const goaway = await idle.waitFor('GOAWAY on the idle connection', isGoaway);
    expect(goawayOf(goaway).errorCode).toBe(ErrorCode.NO_ERROR);
    expect(goaway.at - openedAt).toBeGreaterThanOrEqual(450);
    await idle.waitForClose('the idle connection to be closed');
    // Twice the idle limit with a call open: still there.
    await pollUntil('twice the idle limit', () => (Date.now() - openedAt > 1000 ? true : undefined));
    expect(busy.frames.filter(isGoaway)).toEqual([]);
    expect(busy.isClosed).toBe(false);
    busy.close();
  });
});

test('after --max-connection-age-ms a connection is sent GOAWAY, calls in flight finish within the grace, and it is closed when the grace ends', async () => {
  await withServer(['--max-connection-age-ms', '500', '--max-connection-age-grace-ms', '1500'], async (server) => {
    const old = await RawHttp2Connection.open(server.address);
    old.openCall(1, SET, server.address); // in flight: its request not sent yet
    old.openCall(3, WATCH, server.address); // a stream that never ends by itself
    old.sendMessage(3, WATCH_ALL, true);
    const goaway = await old.waitFor('GOAWAY for age', isGoaway, 5_000);
    expect(goawayOf(goaway).errorCode).toBe(ErrorCode.NO_ERROR);

    old.sendMessage(1, SET_K, true);
    await old.waitFor('the response to the call in flight', (f) => f.type === FrameType.DATA && f.streamId === 1);
    expect(old.frames.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 1)).toBe(false);
    const closedAt = await old.waitForClose('the old connection to be closed once the grace ends');
    expect(closedAt - goaway.at).toBeGreaterThanOrEqual(1400);
    await expectServing(server);
  });
});

test('an SDK watch on a connection closed for age resumes on a new one, each change once', async () => {
  await withServer(['--max-connection-age-ms', '500', '--max-connection-age-grace-ms', '500'], async (server) => {
    const kv = new KvClient(server.address);
    try {
      const watch = kv.watch({ prefix: 'a/', startRevision: 1 });
      const seen: Array<[string, number]> = [];
      const consumed = (async () => {
        for await (const event of watch) {
          seen.push([event.key, event.revision]);
          if (seen.length === 2) break;
        }
      })();
      const first = await kv.set('a/1', 1);
      await pollUntil('the watch to resume on a new connection', () => (watch.reconnectCount > 0 ? true : undefined));
      const second = await kv.set('a/2', 2);
      await consumed;
      expect(seen).toEqual([
        ['a/1', first],
        ['a/2', second],
      ]);
    } finally {
      kv.close();
    }
  });
});

test('a connection that opens more than --max-concurrent-streams calls is refused the extra one; the server goes on', async () => {
  await withServer(['--max-concurrent-streams', '2'], async (server) => {
    const greedy = await RawHttp2Connection.open(server.address);
    for (const stream of [1, 3, 5]) {
      greedy.openCall(stream, WATCH, server.address);
      greedy.sendMessage(stream, WATCH_ALL, true);
    }
    const refusal = await greedy.waitFor(
      'the third stream refused',
      (f) => (f.type === FrameType.RST_STREAM && f.streamId === 5) || isGoaway(f),
    );
    if (refusal.type === FrameType.RST_STREAM) {
      expect(refusal.payload.readUInt32BE(0)).toBe(ErrorCode.REFUSED_STREAM);
    } else {
      // nghttp2 treats streams past a limit the client acknowledged as a connection error: GOAWAY naming
      // the last stream it took, then the connection ends.
      expect(goawayOf(refusal).lastStreamId).toBe(3);
      await greedy.waitForClose('the greedy connection to be closed');
    }
    greedy.close();
    await expectServing(server);
  });
});

test('an SDK client with more calls than --max-concurrent-streams queues the extra one until a stream frees', async () => {
  await withServer(['--max-concurrent-streams', '2'], async (server) => {
    const kv = new KvClient(server.address);
    // grpc-js shares one connection among the clients of a process: this one needs its own.
    const other = new KvClient(server.address, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
    try {
      await kv.set('warm', 0); // the connection is up and the server's limit known
      const watches = [kv.watch({ prefix: 'a/' }), kv.watch({ prefix: 'b/' })];
      const iterators = watches.map((w) => w[Symbol.asyncIterator]());
      const firstEvents = iterators.map((it) => it.next());
      // Both watch streams open: each sees a change made through another connection.
      await other.set('a/0', 0);
      await other.set('b/0', 0);
      expect((await firstEvents[0]).value).toMatchObject({ key: 'a/0' });
      expect((await firstEvents[1]).value).toMatchObject({ key: 'b/0' });

      let done = false;
      const set = kv.set('a/1', 1).then((revision) => {
        done = true;
        return revision;
      });
      const waitingSince = Date.now();
      await pollUntil('half a second with both streams held', () => (Date.now() - waitingSince > 500 ? true : undefined));
      expect(done).toBe(false);
      watches[1].close();
      expect(await set).toBe(4);
    } finally {
      kv.close();
      other.close();
    }
  });
});

test('connections past --max-connections are closed at once, logged, and taken again once one closes', async () => {
  // Every connection here is from 127.0.0.1: no cap per address, so the port's own cap is what refuses.
  await withServer(['--max-connections', '3', '--max-connections-per-address', '0'], async (server) => {
    const held = await Promise.all([1, 2, 3].map(() => RawHttp2Connection.open(server.address)));
    const extra = await RawHttp2Connection.connect(server.address);
    extra.write(Buffer.concat([PREFACE]));
    await extra.waitForClose('the connection past the limit to be closed');
    expect(extra.frames).toEqual([]);
    await pollUntil('the refusal to be logged', () => (server.output().includes('refused 1 connection(s): 3 are open') ? true : undefined));

    held[0].close();
    await pollUntil('a connection to be taken again', async () => {
      const again = await RawHttp2Connection.open(server.address).catch(() => undefined);
      again?.close();
      return again;
    });
    for (const connection of held) connection.close();
    // The server counts a connection until it has seen it close: wait for that, then a client is served.
    await pollUntil('the closed connections to be let go', async () => {
      const probe = await RawHttp2Connection.open(server.address).catch(() => undefined);
      probe?.close();
      return probe;
    });
    await expectServing(server);
  });
});

test('with TLS, a connection that does not finish the TLS handshake within the handshake timeout is closed', async () => {
  const certificates = makeTestCertificates();
  const credentials = ServerCredentials.createSsl(null, [
    { cert_chain: readFileSync(certificates.serverCert), private_key: readFileSync(certificates.serverKey) },
  ]);
  const limits: ConnectionLimits = {
    handshakeTimeoutMs: 500,
    keepaliveTimeMs: 0,
    keepaliveTimeoutMs: 20_000,
    maxConnectionIdleMs: 0,
    maxConnectionAgeMs: 0,
    maxConnectionAgeGraceMs: 30_000,
    maxConcurrentStreams: 100,
    maxHealthStreamsPerConnection: 16,
    maxConnections: 10,
    maxConnectionsPerAddress: 0,
  };
  const server = new Server();
  const listener = await listenWithLimits(server, credentials, '127.0.0.1:0', limits, pino({ level: 'silent' }));
  try {
    const socket = net.connect({ host: '127.0.0.1', port: listener.port });
    socket.on('error', () => undefined);
    const connectedAt = await new Promise<number>((resolve) => socket.once('connect', () => resolve(Date.now())));
    const closedAt = await new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    expect(closedAt - connectedAt).toBeGreaterThanOrEqual(450);
    expect(closedAt - connectedAt).toBeLessThan(20_000);
  } finally {
    listener.close();
    server.forceShutdown();
  }
});

test('the listener takes every address a host name resolves to, and an address in use exits 1 with one line', async () => {
  const server = await startServer({ args: ['--listen', 'localhost:0'] });
  try {
    const port = server.address.split(':')[1];
    for (const { address } of await dns.lookup('localhost', { all: true })) {
      await expectServing({ ...server, address: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}` });
    }
    const { code, stdout, stderr } = await runServerToExit(['--listen', `127.0.0.1:${port}`, '--data-dir', makeTempDir()]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^kv-server: cannot listen on 127\\.0\\.0\\.1:${port} \\(--listen\\): .*EADDRINUSE.*\\n$`));
    // The HTTP port's address taken: the line names that flag, not the same words as for the gRPC port.
    const http = await runServerToExit(['--listen', '127.0.0.1:0', '--http-listen', `127.0.0.1:${port}`, '--data-dir', makeTempDir()]);
    expect({ code: http.code, stdout: http.stdout }).toEqual({ code: 1, stdout: '' });
    expect(http.stderr).toMatch(new RegExp(`^kv-server: cannot listen on 127\\.0\\.0\\.1:${port} \\(--http-listen\\): .*EADDRINUSE.*\\n$`));
  } finally {
    await server.stop();
  }
});
