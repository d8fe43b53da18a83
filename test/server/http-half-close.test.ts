/**
 * A client that sends its request over HTTP/1.1 and then shuts its side of
 * the connection (`printf 'POST ...' | nc -N`, a shutdown(SHUT_WR)) still
 * reads the answer, plaintext and over TLS: it gets it, the call is applied
 * once, and the server closes the connection after it. Node ended the
 * connection as the client's FIN came, so the call ran, or not, and was
 * never answered. A Watch so sent streams on while its client reads, and
 * ends (counted CANCELLED) once its client has gone.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { issueServer, makeCa, read } from '../support/certificates';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

let plain: RunningServer;
let secure: RunningServer;
let ca: Buffer;

beforeAll(async () => {
  const dir = makeTempDir('kv-http-half-close-');
  const authority = makeCa(dir, 'ca');
  const cert = issueServer(dir, authority);
  ca = read(authority.cert);
  // Progress messages every 100 ms: a Watch writes to its client that often.
  [plain, secure] = await Promise.all([
    startServer({ args: ['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--watch-progress-ms', '100'] }),
    startServer({ args: ['--http-listen', '127.0.0.1:0', '--tls-cert', cert.cert, '--tls-key', cert.key] }),
  ]);
});

afterAll(async () => {
  expect(await plain.stop()).toBe(0);
  expect(await secure.stop()).toBe(0);
});

/** A raw HTTP/1.1 connection and what it has received. */
interface RawConnection {
  socket: net.Socket;
  received(): string;
}

async function connect(server: RunningServer, overTls: boolean): Promise<RawConnection> {
  const address = server.httpAddress!;
  const colon = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, colon), Number(address.slice(colon + 1))];
  const socket = overTls
    ? tls.connect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
    : net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once(overTls ? 'secureConnect' : 'connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  return { socket, received: () => received };
}

function post(address: string, method: string, contentType: string, body: Buffer | string): string {
  const bytes = Buffer.from(body);
  return (
    `POST /kv.v1.KeyValueService/${method} HTTP/1.1\r\nHost: ${address}\r\ncontent-type: ${contentType}\r\n` +
    `content-length: ${bytes.length}\r\n\r\n${bytes.toString('latin1')}`
  );
}

/** A Get over Node's own client (https with the test CA): the status and the entry. */
function get(server: RunningServer, key: string): Promise<{ status: number; entry?: { value: unknown; version: string } }> {
  const url = `${server === secure ? 'https' : 'http'}://${server.httpAddress}/kv.v1.KeyValueService/Get`;
  const options = { method: 'POST', headers: { 'content-type': 'application/json' }, ca };
  return new Promise((resolve, reject) => {
    const request = (server === secure ? https : http).request(url, options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ...(JSON.parse(body) as object) }));
    });
    request.on('error', reject);
    request.end(JSON.stringify({ key }));
  });
}

test.each([
  ['plaintext', false],
  ['TLS', true],
] as const)(
  'over %s, two Sets sent and then half-closed are both answered 200, applied once each, and the connection closed after them',
  async (name, overTls) => {
    const server = overTls ? secure : plain;
    const connection = await connect(server, overTls);
    const keys = [`half-close/${name}/a`, `half-close/${name}/b`];
    const requests = keys.map((key) => post(server.httpAddress!, 'Set', 'application/json', JSON.stringify({ key, value: key })));
    connection.socket.end(requests.join(''));
    await pollUntil('the server to close the connection', () => (connection.socket.closed ? true : undefined));
    expect(connection.received().match(/HTTP\/1\.1 \d+ [^\r]*/g)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(connection.received()).toMatch(/\{"revision":"\d+"\}$/);
    for (const key of keys) expect(await get(server, key)).toMatchObject({ status: 200, entry: { value: key, version: '1' } });
  },
);

interface Gauges {
  open: number;
  cancelled: number;
}

async function scrape(): Promise<Gauges> {
  const text = await (await fetch(`http://${plain.metricsAddress}/metrics`)).text();
  const sample = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    open: sample(/^kv_grpc_server_open_streams\{method="Watch"\} (\d+)$/m),
    cancelled: sample(/^kv_grpc_server_handled_total\{method="Watch",code="CANCELLED"\} (\d+)$/m),
  };
}

test('a Watch sent and then half-closed streams on while its client reads, and ends, CANCELLED, once the client has gone', async () => {
  const before = await scrape();
  const connection = await connect(plain, false);
  const json = Buffer.from(JSON.stringify({ prefix: 'half-close/watched/' }));
  const header = Buffer.alloc(5);
  header.writeUInt32BE(json.length, 1);
  connection.socket.end(post(plain.httpAddress!, 'Watch', 'application/connect+json', Buffer.concat([header, json])));
  const stillOpen = (): void => {
    if (connection.socket.closed) throw new Error(`the server closed the connection; it sent ${JSON.stringify(connection.received())}`);
  };
  await pollUntil('the Watch to be open', async () => {
    stillOpen();
    return (await scrape()).open === before.open + 1 ? true : undefined;
  });
  // A write after the half-close reaches the client.
  const set = await fetch(`http://${plain.httpAddress}/kv.v1.KeyValueService/Set`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: 'half-close/watched/k', value: 1 }),
  });
  expect(set.status).toBe(200);
  await pollUntil('the change to reach the client', () => {
    stillOpen();
    return connection.received().includes('half-close/watched/k') ? true : undefined;
  });
  expect(connection.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);

  connection.socket.destroy();
  const after = await pollUntil('the Watch to be counted closed', async () => {
    const now = await scrape();
    return now.open === before.open ? now : undefined;
  });
  expect(after.cancelled).toBe(before.cancelled + 1);
  expect(plain.output()).not.toMatch(/unexpected error|answering a call failed/);
});
