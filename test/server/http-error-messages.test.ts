/**
 * The HTTP port's answers to requests connect-node or protobuf-es refuse
 * before any kv code runs, in one plain line of kv's, as on the gRPC port:
 * a stream's body sent without its 5-byte frames is told so (not "message
 * size 577794661 is larger than configured readMaxBytes"); a body past the
 * size limit names the limit and kv's flag, not connect-node's option; a
 * JSON body of the wrong shape says what was expected, without JavaScript's
 * debug forms ("Array(0)", "got object", "expected bigint (int64): 15.0 out
 * of range").
 */
import http2 from 'node:http2';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  base = `http://${server.httpAddress}/kv.v1.KeyValueService`;
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** The messages of a framed body: a flags byte, a 4-byte length, the message. */
function unframe(body: Buffer): { flags: number; message: Buffer }[] {
  const frames: { flags: number; message: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
    frames.push({ flags: body[at], message: body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1)) });
  }
  return frames;
}

/** How a Connect stream ended: the error of its end-of-stream message. */
function streamError(body: Buffer): { code: string; message: string } {
  const end = unframe(body).at(-1)!;
  expect(end.flags).toBe(2);
  return (JSON.parse(end.message.toString()) as { error: { code: string; message: string } }).error;
}

/** What every one of these answers is: one line of kv's, with none of connect-node's or JavaScript's words. */
function expectPlain(message: string): void {
  expect(message.split('\n')).toHaveLength(1);
  expect(message).not.toMatch(/readMaxBytes|Array\(|got object|bigint|cannot decode|message size/);
}

const UNFRAMED =
  /^request could not be decoded: application\/(connect|grpc-web)\+json bodies are framed: each message needs a 5-byte header before it .*README.*starts with "\{"$/;

describe('a stream’s body sent without its frames (as a unary call’s JSON is sent)', () => {
  test.each(['Watch', 'Backup'])('%s over Connect ends with invalid_argument saying a message needs the 5-byte header', async (method) => {
    const response = await fetch(`${base}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: method === 'Watch' ? '{"prefix": "user/"}' : '{}',
    });
    const error = streamError(Buffer.from(await response.arrayBuffer()));
    expect(error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(UNFRAMED) });
    expectPlain(error.message);
  });

  test('KeepAlive over HTTP/2 too', async () => {
    const session = http2.connect(`http://${server.httpAddress}`);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/kv.v1.KeyValueService/KeepAlive',
        'content-type': 'application/connect+json',
      });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      const ended = new Promise<void>((resolve) => stream.once('end', resolve));
      stream.end('{"id": "1"}');
      await ended;
      const error = streamError(Buffer.concat(chunks));
      expect(error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(UNFRAMED) });
      expectPlain(error.message);
    } finally {
      session.close();
    }
  });

  test('a gRPC-Web call (every one is framed) gets grpc-status 3 with the same line', async () => {
    const response = await fetch(`${base}/Get`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web+json' },
      body: '{"key": "a"}',
    });
    const trailer = unframe(Buffer.from(await response.arrayBuffer())).at(-1)!;
    expect(trailer.flags & 0x80).toBe(0x80);
    const fields = Object.fromEntries(
      trailer.message
        .toString()
        .trim()
        .split('\r\n')
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
    );
    expect(fields['grpc-status']).toBe('3');
    expect(decodeURIComponent(fields['grpc-message'])).toMatch(UNFRAMED);
  });
});

describe('bytes after the one message of a unary or server-streaming call', () => {
  const frame = (json: string): Buffer => {
    const message = Buffer.from(json);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(message.length, 1);
    return Buffer.concat([header, message]);
  };

  test('Watch over Connect ends with invalid_argument naming them, not a made-up size', async () => {
    const response = await fetch(`${base}/Watch`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: Buffer.concat([frame('{"key":"a"}'), Buffer.from('garbage')]),
    });
    const error = streamError(Buffer.from(await response.arrayBuffer()));
    expect(error).toMatchObject({
      code: 'invalid_argument',
      message: "request could not be decoded: this call takes one message, of 11 bytes by its frame's header, and 7 more bytes follow it",
    });
  });

  test('a gRPC-Web Get with a second frame gets grpc-status 3; the same call in one frame is answered', async () => {
    const call = async (body: Buffer): Promise<string> => {
      const response = await fetch(`${base}/Get`, { method: 'POST', headers: { 'content-type': 'application/grpc-web+json' }, body });
      return unframe(Buffer.from(await response.arrayBuffer()))
        .at(-1)!
        .message.toString();
    };
    expect(await call(Buffer.concat([frame('{"key":"a"}'), frame('{"key":"b"}')]))).toContain('grpc-status: 3');
    expect(await call(frame('{"key":"a"}'))).toContain('grpc-status: 5');
  });
});

describe('a request past the size limit', () => {
  const large = JSON.stringify({ key: 'big', value: 'x'.repeat(20 * 1024 * 1024) });

  test('names its size, the limit and --max-value-bytes, not readMaxBytes', async () => {
    const response = await fetch(`${base}/Set`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: large });
    const json = (await response.json()) as { code: string; message: string };
    expect([response.status, json.code]).toEqual([429, 'resource_exhausted']);
    expect(json.message).toBe(
      `the request is ${Buffer.byteLength(large)} bytes, larger than this server's limit of 16846848 bytes for a request (16 × --max-value-bytes + --max-key-bytes + 64 KiB, at least 16 MiB)`,
    );
    expectPlain(json.message);
  });

  test('sent without a length (chunked), or as one message of a stream, it is refused in the same words', async () => {
    const chunked = await fetch(`${base}/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new Blob([large]).stream(),
      duplex: 'half',
    });
    const json = (await chunked.json()) as { code: string; message: string };
    expect([chunked.status, json.code]).toEqual([429, 'resource_exhausted']);
    expect(json.message).toMatch(
      /^the request is larger than this server's limit of 16846848 bytes for a request \(16 × --max-value-bytes/,
    );
    expectPlain(json.message);

    // A frame whose header says 32 MiB follow.
    const header = Buffer.from([0, 0, 0, 0, 0]);
    header.writeUInt32BE(32 * 1024 * 1024, 1);
    const stream = await fetch(`${base}/Watch`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: Buffer.concat([header, Buffer.from('{}')]),
    });
    const error = streamError(Buffer.from(await stream.arrayBuffer()));
    expect(error).toEqual({
      code: 'resource_exhausted',
      message: `the request is ${32 * 1024 * 1024} bytes, larger than this server's limit of 16846848 bytes for a request (16 × --max-value-bytes + --max-key-bytes + 64 KiB, at least 16 MiB)`,
    });
  });
});

describe('a JSON body of the wrong shape', () => {
  const cases: [method: string, body: string, message: string][] = [
    ['Get', '[]', "the body must be a JSON object of kv.v1.GetRequest's fields, not an array"],
    ['Get', 'null', "the body must be a JSON object of kv.v1.GetRequest's fields, not null"],
    ['Get', '"user/1"', 'the body must be a JSON object of kv.v1.GetRequest\'s fields, not "user/1"'],
    ['Get', '', "the body is empty: send a JSON object of kv.v1.GetRequest's fields ({} for none)"],
    ['Get', '{"key": []}', 'key must be a string, not an array'],
    ['Get', '{"key": {}}', 'key must be a string, not an object'],
    ['Get', '{"key": 5}', 'key must be a string, not 5'],
    ['Get', '{"key": "a", "kee": "b"}', 'kv.v1.GetRequest has no field "kee"'],
    ['Set', '{"key": "a", "value": 1, "expectedRevision": "15.0"}', 'expectedRevision must be an integer (a JSON number, or a string of decimal digits), not "15.0"'],
    ['Set', '{"key": "a", "value": 1, "expectedRevision": 1.5}', 'expectedRevision must be an integer (a JSON number, or a string of decimal digits), not 1.5'],
    ['Set', '{"key": "a", "value": 1, "expectedRevision": "1e1"}', 'expectedRevision must be an integer (a JSON number, or a string of decimal digits), not "1e1"'],
    ['Txn', '{"compare": {}}', 'compare must be an array, not an object'],
    ['Txn', '{"compare": [null]}', 'compare[0] must not be null'],
    ['Txn', '{"success": [{"get": {"key": "a"}, "delete": {"key": "a"}}]}', 'success[0].get and success[0].delete are both given, and only one of them may be'],
    ['LeaseInfo', '{"id": "1", "keys": "yes"}', 'keys must be true or false, not "yes"'],
    ['Txn', '{"compare": [{"result": "EQUAL", "key": "a", "version": "1"}]}', 'compare[0].result must be one of COMPARE_RESULT_UNSPECIFIED, COMPARE_RESULT_EQUAL, COMPARE_RESULT_NOT_EQUAL, COMPARE_RESULT_LESS, COMPARE_RESULT_GREATER (or its number), not "EQUAL"'],
  ]; // prettier-ignore

  test.each(cases)('%s %s: one plain line', async (method, body, message) => {
    const response = await fetch(`${base}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const json = (await response.json()) as { code: string; message: string };
    expect([response.status, json.code, json.message]).toEqual([400, 'invalid_argument', `request could not be decoded: ${message}`]);
    expect(response.headers.get('kv-reason')).toBe('INVALID_ARGUMENT');
    expectPlain(json.message);
  });
});
