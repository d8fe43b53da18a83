/**
 * What the HTTP port answers to requests it cannot serve as asked, through a
 * real server: a protobuf body that does not decode gets the gRPC port's
 * INVALID_ARGUMENT (not INTERNAL); a Watch that reaches its deadline ends
 * with deadline_exceeded (not an OK end of stream); a wrong content type,
 * HTTP method, RPC name or HTTP version gets a line saying what is expected
 * (not an empty body); a content type sent twice with different values is
 * refused (not the first taken).
 */
import http from 'node:http';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { encodeFrame, Flag, FrameType, RawHttp2Connection } from '../support/raw-http2';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  base = `http://${server.httpAddress}`;
});

afterAll(async () => {
  if (server.child.exitCode === null) expect(await server.stop()).toBe(0);
});

const rpc = (method: string): string => `${base}/kv.v1.KeyValueService/${method}`;

/** A Connect or gRPC-Web stream message: a flags byte, the length (4 bytes, big-endian), the message. */
function frame(message: Buffer | string, flags = 0): Buffer {
  const bytes = Buffer.from(message);
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([header, bytes]);
}

function unframe(body: Buffer): { flags: number; message: Buffer }[] {
  const frames: { flags: number; message: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    frames.push({ flags: body[at], message: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return frames;
}

/** The same bytes as a unary gRPC call on the gRPC port: its status. */
function overGrpc(method: string, request: Buffer): Promise<ServiceError> {
  const client = new Client(server.address, credentials.createInsecure());
  return new Promise<ServiceError>((resolve, reject) =>
    client.makeUnaryRequest(
      `/kv.v1.KeyValueService/${method}`,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      request,
      new Metadata(),
      (error) => (error === null ? reject(new Error('the gRPC call succeeded')) : resolve(error)),
    ),
  ).finally(() => client.close());
}

/** POSTs `body` to `method` over HTTP/1.1, each header of an array sent as that many lines: the status and text of the answer. */
function postHttp1(method: string, headers: Record<string, string[]>, body: Buffer): Promise<{ status: number; text: string }> {
  const url = new URL(rpc(method));
  return new Promise((resolve, reject) => {
    const request = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A length-delimited protobuf field. */
function field(tag: number, payload: Buffer): Buffer {
  const length: number[] = [];
  for (let rest = payload.length; ; rest = Math.floor(rest / 128)) {
    length.push(rest < 128 ? rest : (rest % 128) + 128);
    if (rest < 128) break;
  }
  return Buffer.concat([Buffer.from([tag, ...length]), payload]);
}

/** SetRequest{key: "d", value: [[[...null...]]]}, arrays nested `depth` deep. */
function deeplyNested(depth: number): Buffer {
  let value: Buffer = Buffer.from([0x08, 0x00]); // Value{null_value}
  for (let level = 0; level < depth; level++) value = field(0x32, field(0x0a, value)); // Value{list_value{values: [value]}}
  return Buffer.concat([field(0x0a, Buffer.from('d')), field(0x12, value)]);
}

describe('a protobuf body that does not decode', () => {
  const bodies: [string, string, Buffer, string][] = [
    ['cut short', 'Get', Buffer.from([0x0a, 0x05, 0x61, 0x62]), 'INVALID_ARGUMENT'], // key: 5 bytes promised, 2 sent
    ['with a key that is not UTF-8', 'Get', Buffer.from([0x0a, 0x02, 0xff, 0xfe]), 'INVALID_ARGUMENT'],
    ['with a value nested past what protobuf decoders read', 'Set', deeplyNested(120), 'INVALID_VALUE'],
  ];

  test.each(bodies)(
    '%s: 400 invalid_argument with the gRPC port message and reason, for application/proto',
    async (_name, method, body, reason) => {
      const response = await fetch(rpc(method), { method: 'POST', headers: { 'content-type': 'application/proto' }, body });
      const json = (await response.json()) as { code: string; message: string };
      const grpc = await overGrpc(method, body);
      expect(grpc.details).toMatch(/^request could not be decoded: /);
      expect([response.status, json.code, json.message]).toEqual([400, 'invalid_argument', grpc.details]);
      expect(response.headers.get('kv-reason')).toBe(reason);
      expect(grpc.metadata.get('kv-reason')).toEqual([reason]);
    },
  );

  test('in a stream (Connect and gRPC-Web): the stream ends with invalid_argument', async () => {
    const cut = Buffer.from([0x0a, 0x05, 0x61, 0x62]); // WatchRequest{key: cut short}
    const connect = await fetch(rpc('Watch'), {
      method: 'POST',
      headers: { 'content-type': 'application/connect+proto' },
      body: frame(cut),
    });
    const end = unframe(Buffer.from(await connect.arrayBuffer())).at(-1)!;
    expect(end.flags).toBe(2);
    expect(JSON.parse(end.message.toString())).toMatchObject({
      error: { code: 'invalid_argument', message: 'request could not be decoded: premature EOF' },
    });

    const grpcWeb = await fetch(rpc('Get'), {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web+proto' },
      body: frame(cut),
    });
    const trailer = unframe(Buffer.from(await grpcWeb.arrayBuffer())).at(-1)!;
    expect(trailer.flags & 0x80).toBe(0x80);
    expect(trailer.message.toString()).toMatch(/grpc-status: 3\r\n/);
    expect(trailer.message.toString()).toMatch(/grpc-message: request%20could%20not%20be%20decoded/);
  });
});

describe('a Watch that reaches its deadline', () => {
  test('over connect+json ends with deadline_exceeded, not an OK end of stream', async () => {
    const startedAt = Date.now();
    const response = await fetch(rpc('Watch'), {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': '300' },
      body: frame('{"prefix": "zzz/"}'),
    });
    const frames = unframe(Buffer.from(await response.arrayBuffer()));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    const end = frames.at(-1)!;
    expect(end.flags).toBe(2);
    expect(JSON.parse(end.message.toString())).toMatchObject({ error: { code: 'deadline_exceeded' } });
  });
});

describe('requests that are not calls', () => {
  /** The 415 line and Accept-Post for `method` sent with `contentType` (none if undefined). */
  async function refused(method: string, contentType: string | undefined): Promise<{ line: string; acceptPost: string | null }> {
    const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
    // Bytes, not a string: fetch sends a string as text/plain unless told otherwise.
    const response = await fetch(rpc(method), { method: 'POST', headers, body: Buffer.from('{}') });
    const text = await response.text();
    expect([method, contentType, response.status]).toEqual([method, contentType, 415]);
    expect(text.endsWith('\n') && !text.trim().includes('\n')).toBe(true);
    return { line: text.trim(), acceptPost: response.headers.get('accept-post') };
  }

  const UNARY_TYPES =
    'application/json or application/proto (Connect), or application/grpc-web+json or application/grpc-web+proto (gRPC-Web)';
  const STREAM_TYPES =
    'application/connect+json or application/connect+proto (Connect), or application/grpc-web+json or application/grpc-web+proto (gRPC-Web)';

  test('a stream’s content type sent to a unary method gets 415 saying what to send instead, and that it is for streams', async () => {
    for (const type of ['application/connect+json', 'application/connect+proto']) {
      expect(await refused('Get', type)).toEqual({
        line:
          `content-type ${type} is for streaming methods (Watch, KeepAlive, Backup): Get is unary; ` +
          'send application/json (or application/proto; gRPC-Web: application/grpc-web+json or application/grpc-web+proto)',
        acceptPost: 'application/json, application/proto, application/grpc-web+json, application/grpc-web+proto',
      });
    }
  });

  test('a unary content type sent to a stream gets 415 saying it is for unary methods, and what the stream takes', async () => {
    expect(await refused('Watch', 'application/json')).toEqual({
      line:
        'content-type application/json is for unary methods: Watch is a server stream; send application/connect+json ' +
        '(or application/connect+proto; gRPC-Web: application/grpc-web+json or application/grpc-web+proto), with its messages framed (see README, "Over HTTP")',
      acceptPost: 'application/connect+json, application/connect+proto, application/grpc-web+json, application/grpc-web+proto',
    });
    expect((await refused('Backup', 'application/proto')).line).toMatch(
      /^content-type application\/proto is for unary methods: Backup is a server stream; /,
    );
  });

  test('other content types get 415 with a line that reads right: none, an unknown one, curl’s default, a parameter, gRPC-Web text', async () => {
    expect((await refused('Get', undefined)).line).toBe(`a call needs a content-type: Get takes ${UNARY_TYPES}`);
    expect((await refused('Get', 'text/plain')).line).toBe(`content-type text/plain is not one this port takes: Get takes ${UNARY_TYPES}`);
    expect((await refused('Watch', 'text/plain')).line).toBe(
      `content-type text/plain is not one this port takes: Watch takes ${STREAM_TYPES}`,
    );
    expect((await refused('Get', 'application/x-www-form-urlencoded')).line).toBe(
      "content-type application/x-www-form-urlencoded, which curl -d sends unless told otherwise, is not one this port takes (curl: -H 'content-type: application/json'): " +
        `Get takes ${UNARY_TYPES}`,
    );
    expect((await refused('Get', 'application/json; charset=latin1')).line).toBe(
      'content-type application/json; charset=latin1 is not taken as written: send application/json, or application/json; charset=utf-8 (JSON is read as UTF-8 only)',
    );
    expect((await refused('Get', 'application/proto; charset=utf-8')).line).toBe(
      'content-type application/proto; charset=utf-8 is not taken as written: send application/proto alone, without parameters',
    );
    expect((await refused('Get', 'application/grpc-web-text')).line).toBe(
      `content-type application/grpc-web-text is gRPC-Web's text mode, which this port does not serve: Get takes ${UNARY_TYPES} (grpc-web clients: mode=grpcweb)`,
    );
  });

  test('an RPC kv.v1 does not have gets 404 naming it as unknown', async () => {
    const response = await fetch(rpc('Nope'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const text = await response.text();
    expect(response.status).toBe(404);
    expect(text).toContain('/kv.v1.KeyValueService/Nope');
    expect(text).toMatch(/unknown/i);
    expect(text).toContain('Get');
    expect(text.trim().split('\n')).toHaveLength(1);
    // A path that is not an RPC's shape at all keeps the general hint.
    const other = await fetch(`${base}/nothing/here/at/all`, { method: 'POST', body: '{}' });
    expect([other.status, await other.text()]).toEqual([404, 'not found: RPCs are POST /kv.v1.KeyValueService/<Method>\n']);
  });

  test('GET and OPTIONS on an RPC get 405 saying POST, with Allow: POST', async () => {
    for (const method of ['GET', 'OPTIONS', 'PUT']) {
      const response = await fetch(rpc('Get'), { method });
      const text = await response.text();
      expect([method, response.status]).toEqual([method, 405]);
      expect(response.headers.get('allow')).toBe('POST');
      expect(text).toContain('POST');
      expect(text.trim().split('\n')).toHaveLength(1);
    }
  });

  test('a content type sent twice with different values gets 400 saying so, over HTTP/1.1 and HTTP/2 (Node took the first)', async () => {
    const line = 'content-type was sent more than once, with different values (application/json, application/proto): send it once\n';
    const body = (key: string): Buffer => Buffer.from(JSON.stringify({ key, value: 1 }));
    const stored = async (key: string): Promise<boolean> =>
      (await fetch(rpc('Get'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) }))
        .status === 200;

    const overHttp1 = await postHttp1('Set', { 'content-type': ['application/json', 'application/proto'] }, body('type-twice-1'));
    expect(overHttp1).toEqual({ status: 400, text: line });
    expect(await stored('type-twice-1')).toBe(false);
    // Twice alike is that one type, whatever the case of its letters and the spaces around its parameters.
    expect((await postHttp1('Set', { 'content-type': ['application/json', 'application/json'] }, body('type-alike'))).status).toBe(200);
    const alike = ['application/json; charset=utf-8', 'Application/JSON;charset=UTF-8'];
    expect((await postHttp1('Set', { 'content-type': alike }, body('type-alike-2'))).status).toBe(200);

    // Node's own HTTP/2 client sends content-type once at most.
    const connection = await RawHttp2Connection.open(server.httpAddress!);
    try {
      connection.openRequest(1, '/kv.v1.KeyValueService/Set', server.httpAddress!, [
        ['content-type', 'application/json'],
        ['content-type', 'application/proto'],
      ]);
      connection.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, body('type-twice-2')));
      const answered = await connection.waitFor('the answer', (frame) => frame.type === FrameType.DATA && frame.streamId === 1);
      expect(answered.payload.toString()).toBe(line);
    } finally {
      connection.close();
    }
    expect(await stored('type-twice-2')).toBe(false);
  });

  test('KeepAlive over HTTP/1.1 gets 505 saying it needs HTTP/2', async () => {
    const response = await fetch(rpc('KeepAlive'), { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body: '' });
    expect([response.status, await response.text()]).toEqual([505, expect.stringContaining('needs HTTP/2')]);
  });
});
