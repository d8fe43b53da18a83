/**
 * The SDK given several servers: round-robin, reads fail over, a write is
 * sent once and never retried elsewhere, unless it could not be sent at all.
 */
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import { status } from '@grpc/grpc-js';
import { KvClient, KvError } from '@kv/client';
import { freePort } from '../support/etcd-cluster';
import { startServer, type RunningServer } from '../support/server-process';

let a: RunningServer;
let b: RunningServer;
const clients: KvClient[] = [];
const client = (addresses: string[]): KvClient => {
  const kv = new KvClient(addresses, { deadlineMs: 5000 });
  clients.push(kv);
  return kv;
};

beforeAll(async () => {
  [a, b] = await Promise.all([startServer(), startServer()]);
});
afterAll(async () => {
  for (const kv of clients) kv.close();
  await Promise.all([a.stop(), b.stop()]);
});

test('calls go to the servers in turn', async () => {
  const kv = client([a.address, b.address]);
  for (let i = 0; i < 4; i++) await kv.set(`turn/${i}`, i);
  // Two file-engine servers keep separate data, so each key shows where its write went.
  const on = async (address: string): Promise<string[]> => {
    const keys: string[] = [];
    for await (const key of client([address]).keys({ prefix: 'turn/' })) keys.push(key);
    return keys;
  };
  expect([await on(a.address), await on(b.address)]).toEqual([
    ['turn/0', 'turn/2'],
    ['turn/1', 'turn/3'],
  ]);
});

test('a read that meets a server that is down is answered by the next', async () => {
  await client([a.address]).set('read/x', 'x');
  const dead = `127.0.0.1:${await freePort()}`;
  expect((await client([dead, a.address]).get('read/x'))?.value).toBe('x');
});

test('a write whose server cannot be connected to (nothing was sent) goes to the next; later writes pass over that server', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const kv = client([dead, a.address]);
  for (let i = 1; i <= 4; i++) await kv.set(`write/${i}`, i);
  expect((await client([a.address]).get('write/1'))?.value).toBe(1);
  expect((await client([a.address]).get('write/4'))?.value).toBe(4);
});

test('a server that accepts connections but never answers is passed over after connectTimeoutMs (2 s), by reads and writes alike', async () => {
  // TCP accepted, then silence: no HTTP/2 settings, no answer (a frozen process, a stalled proxy).
  const sockets: Socket[] = [];
  const silent = net.createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const hung = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  try {
    const kv = new KvClient([hung, a.address], { deadlineMs: 8000 });
    clients.push(kv);
    for (let i = 1; i <= 3; i++) {
      await kv.set(`silent/${i}`, i);
      expect((await kv.get(`silent/${i}`))?.value).toBe(i);
    }
    expect(sockets.length).toBeGreaterThan(0);
    // With one server there is nothing to pass on to: the call waits for its deadline.
    const alone = new KvClient([hung], { deadlineMs: 1500 });
    clients.push(alone);
    await expect(alone.get('silent/1')).rejects.toMatchObject({ reason: 'DEADLINE_EXCEEDED' });
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test('a write that reached a server and failed (UNAVAILABLE) is not sent again elsewhere', async () => {
  // A server that takes the request, then drops the connection: the request was sent, so it may have happened.
  let requests = 0;
  const h2 = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  h2.on('session', (session) => sessions.push(session));
  h2.on('stream', (stream) => {
    requests++;
    stream.on('error', () => undefined);
    stream.session?.destroy();
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  try {
    const kv = client([`127.0.0.1:${(h2.address() as AddressInfo).port}`, a.address]);
    // Calls go to the servers in turn, skipping one not connected yet: on a busy machine the first write may go to
    // the good server. Each write that reached the dropping one failed there and was sent nowhere else.
    let reached = 0;
    for (let i = 0; i < 10 && reached < 2; i++) {
      const before = requests;
      const result = await kv.set(`reached/${i}`, 1).catch((e: unknown) => e);
      if (requests === before) continue;
      reached++;
      expect(result).toBeInstanceOf(KvError);
      expect(result).toMatchObject({ reason: 'UNAVAILABLE' });
      expect(requests).toBe(before + 1);
      expect(await client([a.address]).get(`reached/${i}`)).toBeUndefined();
    }
    expect(reached).toBeGreaterThan(0);
  } finally {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => h2.close(resolve));
  }
});

test('a watch whose stream was reset without a gRPC status (a worker killed mid-stream) resumes on the next server, not INTERNAL', async () => {
  // A server whose process goes away mid-stream: the stream is reset (RST_STREAM, NO_ERROR) with no grpc-status.
  let resets = 0;
  const h2 = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  h2.on('session', (session) => sessions.push(session));
  h2.on('stream', (stream) => {
    resets++;
    stream.on('error', () => undefined);
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  try {
    await client([a.address]).set('reset/1', 1);
    const kv = client([`127.0.0.1:${(h2.address() as AddressInfo).port}`, a.address]);
    const watch = kv.watch({ prefix: 'reset/', startRevision: 1 });
    const first = await watch[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ key: 'reset/1', type: 'put' });
    expect(resets).toBeGreaterThanOrEqual(1);
    watch.close();
  } finally {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => h2.close(resolve));
  }
});

test('an empty address list is refused', () => {
  expect(() => new KvClient([])).toThrow(/at least one server/);
});

test("an address of the list that is a kv-server's HTTP port (NOT_GRPC) is passed over by reads and writes, and named when no other answers", async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  const httpPort = server.httpAddress as string;
  const kv = new KvClient([httpPort, server.address]);
  try {
    for (let i = 0; i < 4; i++) {
      expect(await kv.set('ng/k', i)).toBeGreaterThan(0);
      expect((await kv.get('ng/k'))?.value).toBe(i);
    }
    const wrong = new KvClient([httpPort, httpPort]);
    const failure = await wrong.get('ng/k').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KvError);
    // The HTTP port says what it is, in a gRPC status with kv-reason NOT_GRPC, and where the gRPC port is.
    expect(failure).toMatchObject({
      reason: 'NOT_GRPC',
      code: status.UNIMPLEMENTED,
      message: `${httpPort}: this is kv-server's HTTP port (Connect, gRPC-Web and the web console), not its gRPC port: send gRPC calls to its --listen address (port ${server.address.split(':')[1]})`,
    });
    wrong.close();
  } finally {
    kv.close();
    await server.stop();
  }
});

test('an address of the list where another HTTP/2 server answers in HTTP, not gRPC (NOT_GRPC), is passed over too', async () => {
  const h2 = http2.createServer((_request, response) => {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not here\n');
  });
  const sessions: http2.ServerHttp2Session[] = [];
  h2.on('session', (session) => sessions.push(session));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const other = `127.0.0.1:${(h2.address() as AddressInfo).port}`;
  try {
    await client([a.address]).set('ng/other', 1);
    const kv = client([other, a.address]);
    for (let i = 0; i < 2; i++) expect((await kv.get('ng/other'))?.value).toBe(1);
    const failure = await client([other, other])
      .get('ng/other')
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({
      reason: 'NOT_GRPC',
      message: expect.stringMatching(`^${other}: the server answered HTTP 404, not gRPC`),
    });
  } finally {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => h2.close(resolve));
  }
});
