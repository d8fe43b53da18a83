/**
 * HTTP/1.1 pipelining on the HTTP port: requests sent one behind another on
 * one connection, without waiting for answers, are run one at a time in
 * order (http1-in-order.ts), so a read sees the writes before it; requests
 * behind a Watch wait until it ends; requests still waiting when the client
 * closes its connection are never run. (A Get pipelined behind a Set used
 * to be run before the Set was applied, and answered after it with the old
 * value; a Set behind a Watch was applied at once, and its answer never
 * came while the Watch lasted.)
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { issueServer, makeCa, read } from '../support/certificates';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

/** A unary call as raw HTTP/1.1. */
function call(method: string, message: object, headers: Record<string, string> = {}): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  return request(method, 'application/json', body, headers);
}

/** A Watch as raw HTTP/1.1: its message in one envelope (flags 0, big-endian length, JSON). */
function watch(message: object, headers: Record<string, string> = {}): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const envelope = Buffer.alloc(5);
  envelope.writeUInt32BE(json.length, 1);
  return request('Watch', 'application/connect+json', Buffer.concat([envelope, json]), headers);
}

function request(method: string, contentType: string, body: Buffer, headers: Record<string, string>): Buffer {
  const lines = [
    `POST /kv.v1.KeyValueService/${method} HTTP/1.1`,
    'Host: localhost',
    `Content-Type: ${contentType}`,
    `Content-Length: ${body.length}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]);
}

interface Answer {
  status: number;
  body: Buffer;
}

/**
 * The whole answers at the start of `bytes` (content-length or chunked
 * bodies), and how many bytes they took.
 */
function parseAnswers(bytes: Buffer): { answers: Answer[]; used: number } {
  const answers: Answer[] = [];
  let at = 0;
  for (;;) {
    const headEnd = bytes.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const head = bytes.subarray(at, headEnd).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    let next = headEnd + 4;
    let body: Buffer;
    if (length !== null) {
      if (bytes.length < next + Number(length[1])) break;
      body = bytes.subarray(next, next + Number(length[1]));
      next += Number(length[1]);
    } else {
      const chunks: Buffer[] = [];
      let done = false;
      for (;;) {
        const sizeEnd = bytes.indexOf('\r\n', next);
        if (sizeEnd < 0) break;
        const size = parseInt(bytes.subarray(next, sizeEnd).toString('latin1'), 16);
        if (bytes.length < sizeEnd + 2 + size + 2) break;
        chunks.push(bytes.subarray(sizeEnd + 2, sizeEnd + 2 + size));
        next = sizeEnd + 2 + size + 2;
        if (size === 0) {
          done = true;
          break;
        }
      }
      if (!done) break;
      body = Buffer.concat(chunks);
    }
    answers.push({ status, body });
    at = next;
  }
  return { answers, used: at };
}

/** A raw connection to the HTTP port, and the answers that came on it so far. */
interface Pipeline {
  socket: net.Socket;
  answers: Answer[];
  /** The bytes of the answer not yet whole. */
  partial(): Buffer;
}

/** A connection to `address`, over TLS (HTTP/1.1 by ALPN) if given the CA to trust. */
async function connect(address = server.httpAddress!, ca?: Buffer): Promise<Pipeline> {
  const [host, port] = splitAddress(address);
  const socket =
    ca === undefined ? net.connect({ host, port }) : tls.connect({ host, port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once(ca === undefined ? 'connect' : 'secureConnect', resolve).once('error', reject));
  const pipeline: Pipeline = { socket, answers: [], partial: () => pending };
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    const { answers, used } = parseAnswers(pending);
    pipeline.answers.push(...answers);
    pending = pending.subarray(used);
  });
  return pipeline;
}

/** Sends every request at once on one connection; their answers, in order. */
async function pipelined(requests: Buffer[], address?: string, ca?: Buffer): Promise<Answer[]> {
  const pipeline = await connect(address, ca);
  pipeline.socket.write(Buffer.concat(requests));
  await pollUntil('every answer', () => (pipeline.answers.length === requests.length ? true : undefined));
  pipeline.socket.destroy();
  return pipeline.answers;
}

const json = (answer: Answer): unknown => JSON.parse(answer.body.toString());

/** The messages of a Connect stream's body (its envelopes' JSON), the end-of-stream one last. */
function envelopes(body: Buffer): Array<Record<string, unknown>> {
  const messages: Array<Record<string, unknown>> = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    messages.push(JSON.parse(body.subarray(at + 5, at + 5 + length).toString()) as Record<string, unknown>);
    at += 5 + length;
  }
  return messages;
}

async function openWatches(): Promise<number> {
  const text = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
  return Number(/^kv_grpc_server_open_streams\{method="Watch"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

async function get(key: string): Promise<{ status: number; body: unknown }> {
  const answer = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  return { status: answer.status, body: await answer.json() };
}

/** Set, Get, Set, Get, Delete, Get of one key, pipelined: each Get sees what was before it. */
async function readsItsWrites(address?: string, ca?: Buffer): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const key = `pipe/${round}`;
    const answers = (
      await pipelined(
        [
          call('Set', { key, value: round }),
          call('Get', { key }),
          call('Set', { key, value: 'two' }),
          call('Get', { key }),
          call('Delete', { key }),
          call('Get', { key }),
        ],
        address,
        ca,
      )
    ).map(json);
    expect(answers[1]).toMatchObject({ entry: { key, value: round } });
    expect(answers[3]).toMatchObject({ entry: { key, value: 'two', version: '2' } });
    expect(answers[4]).toMatchObject({ deleted: true });
    expect(answers[5]).toMatchObject({ code: 'not_found' });
  }
}

test('a Get pipelined behind a Set sees it; a Delete then a Get behind it, the key gone', async () => {
  await readsItsWrites();
});

test('the same over TLS (HTTP/1.1 by ALPN)', async () => {
  const dir = makeTempDir('kv-http-pipelining-');
  const ca = makeCa(dir, 'ca');
  const cert = issueServer(dir, ca);
  const secure = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--tls-cert', cert.cert, '--tls-key', cert.key] });
  try {
    await readsItsWrites(secure.httpAddress, read(ca.cert));
  } finally {
    expect(await secure.stop()).toBe(0);
  }
});

test('requests pipelined behind a Watch wait until it ends (here, at its deadline), then all run, in order', async () => {
  // Far more than may wait on a connection (http1-in-order.ts): its reading stops, and starts again.
  const count = 40;
  const [watched, ...answers] = await pipelined([
    watch({ prefix: 'behind/' }, { 'Connect-Timeout-Ms': '1000' }),
    ...Array.from({ length: count }, (_, i) => call('Set', { key: `behind/${i}`, value: i })),
    call('Get', { key: `behind/${count - 1}` }),
  ]);
  // The Watch saw none of the Sets: they ran after it had ended.
  const messages = envelopes(watched.body);
  expect(messages.at(-1)).toMatchObject({ error: { code: 'deadline_exceeded' } });
  expect(messages.flatMap((message) => (message.events as unknown[] | undefined) ?? [])).toEqual([]);
  const revisions = answers.slice(0, count).map((answer) => Number((json(answer) as { revision: string }).revision));
  expect(revisions).toEqual(revisions.map((_, i) => revisions[0] + i));
  expect(json(answers[count])).toMatchObject({ entry: { key: `behind/${count - 1}`, value: count - 1 } });
});

test('requests still waiting behind a Watch when the client closes its connection are never run', async () => {
  const before = await openWatches();
  const pipeline = await connect();
  pipeline.socket.write(Buffer.concat([watch({ prefix: 'gone/' }), call('Set', { key: 'gone/set', value: 1 })]));
  await pollUntil('the Watch to be open', async () => ((await openWatches()) === before + 1 ? true : undefined));
  // Its first message came, and nothing else: the Set waits.
  await pollUntil("the Watch's first message", () => (pipeline.partial().includes('historyId') ? true : undefined));
  pipeline.socket.destroy();
  // Once the Watch has ended, the requests behind it would run now if ever.
  await pollUntil('the Watch to end', async () => ((await openWatches()) === before ? true : undefined));
  expect(await get('gone/set')).toMatchObject({ status: 404, body: { code: 'not_found' } });
  expect(pipeline.answers).toEqual([]);
});

test('keep-alive calls one after another on one connection, and the console on it, are served as before', async () => {
  const [host, port] = splitAddress(server.httpAddress!);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<net.Socket>();
  const send = (method: string, path: string, body?: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const outgoing = http.request({
        host,
        port,
        agent,
        method,
        path,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      });
      outgoing.once('socket', (socket: net.Socket) => sockets.add(socket));
      outgoing.once('error', reject);
      outgoing.once('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      });
      outgoing.end(body);
    });
  try {
    for (let i = 0; i < 20; i++) {
      expect((await send('POST', '/kv.v1.KeyValueService/Set', JSON.stringify({ key: 'ka/1', value: i }))).status).toBe(200);
      const got = await send('POST', '/kv.v1.KeyValueService/Get', JSON.stringify({ key: 'ka/1' }));
      expect(JSON.parse(got.text)).toMatchObject({ entry: { value: i } });
    }
    const page = await send('GET', '/');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<html/i);
    expect(sockets.size).toBe(1);
  } finally {
    agent.destroy();
  }
});
