/**
 * The Connect protocol's own headers on the HTTP port, checked as connect-go
 * checks them, for unary calls and streams alike: a connect-protocol-version
 * other than "1" is invalid_argument (it was served); a connect-timeout-ms of
 * 0 is deadline_exceeded with nothing done (a Set was applied, and a Watch
 * ran on with no deadline at all), one that is not 1 to 10 digits is
 * invalid_argument naming it; and a call whose deadline passed before its
 * body came is not run (a Set was applied after it; a Watch never ended).
 * Either sent twice alike is taken once (connect-go takes the first; "5, 5"
 * was refused), twice unlike refused saying so; one line holding a comma
 * ("1,000") is the malformed value it is (it was called sent twice, or taken
 * as one of its halves).
 */
import http from 'node:http';
import http2 from 'node:http2';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let base: string;

beforeAll(async () => {
  // Progress messages every 100 ms: a Watch that stays open shows it.
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--watch-progress-ms', '100'] });
  base = `http://${server.httpAddress}/kv.v1.KeyValueService`;
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** A Connect stream message: a flags byte, the length (4 bytes, big-endian), the message. */
function frame(message: string): Buffer {
  const bytes = Buffer.from(message);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([header, bytes]);
}

/** The whole messages of a framed body so far: a flags byte (2: the end of the stream), a 4-byte length, the message. */
function frames(body: Buffer): { flags: number; message: Buffer }[] {
  const found: { flags: number; message: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length && at + 5 + body.readUInt32BE(at + 1) <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
    found.push({ flags: body[at], message: body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1)) });
  }
  return found;
}

/** How a Connect stream ended: the error of its end-of-stream message, the last frame. */
function streamError(body: Buffer): { code: string; message: string } | undefined {
  const last = frames(body).at(-1);
  expect(last?.flags).toBe(2);
  return (JSON.parse(last!.message.toString()) as { error?: { code: string; message: string } }).error;
}

async function set(key: string, headers: Record<string, string>): Promise<{ status: number; code?: string; message?: string }> {
  const response = await fetch(`${base}/Set`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ key, value: 1 }),
  });
  const answer = (await response.json()) as { code?: string; message?: string };
  return { status: response.status, code: answer.code, message: answer.message };
}

/** A Watch of a prefix nothing is written under; the stream's end (it must end within 10 s). */
async function watch(headers: Record<string, string>): Promise<{ code: string; message: string } | undefined> {
  const response = await fetch(`${base}/Watch`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json', ...headers },
    body: frame('{"prefix": "nothing-here/"}'),
    signal: AbortSignal.timeout(10_000),
  });
  return streamError(Buffer.from(await response.arrayBuffer()));
}

async function stored(key: string): Promise<boolean> {
  const response = await fetch(`${base}/Get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  return response.status === 200;
}

describe('connect-protocol-version', () => {
  test.each(['2', '0', 'v1'])('%s is invalid_argument saying it must be "1", and the Set is not applied', async (version) => {
    const answer = await set(`version-${version}`, { 'connect-protocol-version': version });
    expect(answer).toEqual({
      status: 400,
      code: 'invalid_argument',
      message: `connect-protocol-version must be "1", the Connect protocol's only version: got "${version}"`,
    });
    expect(await stored(`version-${version}`)).toBe(false);
  });

  test('2 on a Watch ends the stream with invalid_argument', async () => {
    expect(await watch({ 'connect-protocol-version': '2', 'connect-timeout-ms': '5000' })).toMatchObject({
      code: 'invalid_argument',
      message: 'connect-protocol-version must be "1", the Connect protocol\'s only version: got "2"',
    });
  });

  test('"1", or none (curl sends none), is served', async () => {
    expect(await set('version-1', { 'connect-protocol-version': '1' })).toMatchObject({ status: 200 });
    expect(await set('version-none', {})).toMatchObject({ status: 200 });
    expect(await stored('version-1')).toBe(true);
  });
});

describe('connect-timeout-ms', () => {
  test('0 is deadline_exceeded saying the call was not run, and the Set is not applied', async () => {
    const answer = await set('timeout-0', { 'connect-timeout-ms': '0' });
    expect(answer).toEqual({
      status: 504,
      code: 'deadline_exceeded',
      message: 'connect-timeout-ms 0 leaves the call no time: it was not run (leave the header out for no deadline)',
    });
    expect(await stored('timeout-0')).toBe(false);
  });

  test('0 on a Watch ends it at once with deadline_exceeded (it used to run with no deadline)', async () => {
    expect(await watch({ 'connect-timeout-ms': '0' })).toMatchObject({
      code: 'deadline_exceeded',
      message: expect.stringContaining('not run'),
    });
  });

  test.each(['-1', '+5', '1.5', '10s', 'abc', '12345678901'])('%s is invalid_argument naming it, on a Set and a Watch', async (timeout) => {
    const message = `connect-timeout-ms must be a whole number of milliseconds, 1 to 10 digits (leave it out for no deadline): got "${timeout}"`;
    expect(await set(`timeout-${timeout}`, { 'connect-timeout-ms': timeout })).toEqual({ status: 400, code: 'invalid_argument', message });
    expect(await stored(`timeout-${timeout}`)).toBe(false);
    expect(await watch({ 'connect-timeout-ms': timeout })).toMatchObject({ code: 'invalid_argument', message });
  });

  test('a positive one is served', async () => {
    expect(await set('timeout-5000', { 'connect-timeout-ms': '5000' })).toMatchObject({ status: 200 });
  });

  test('one longer than a timer holds (2^31 ms, 10 digits) is served as some 24.8 days, not as 1 ms', async () => {
    for (const timeout of ['2147483648', '9999999999']) {
      expect(await set(`timeout-${timeout}`, { 'connect-timeout-ms': timeout })).toMatchObject({ status: 200 });
      // A Watch with it stays open (it ended deadline_exceeded at once): its first message comes, and no end.
      const controller = new AbortController();
      const response = await fetch(`${base}/Watch`, {
        method: 'POST',
        headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': timeout },
        body: frame('{"prefix": "nothing-here/"}'),
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      let read = Buffer.alloc(0);
      // The first message, then progress messages every 100 ms: by the third, the stream has outlived a 1 ms deadline.
      while (frames(read).length < 3) {
        const { value, done } = await reader.read();
        expect(done).toBe(false);
        read = Buffer.concat([read, value!]);
      }
      expect(frames(read).map(({ flags }) => flags)).not.toContain(2);
      controller.abort();
    }
  });

  test('a gRPC-Web call with a grpc-timeout longer than a timer holds is served too', async () => {
    const message = Buffer.from('{"key": "grpc-web-timeout", "value": 1}');
    const response = await fetch(`${base}/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web+json', 'grpc-timeout': '99999999H' },
      body: Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]),
    });
    const body = Buffer.from(await response.arrayBuffer()).toString('latin1');
    expect(body).toMatch(/grpc-status: ?0/);
  });
});

/** POSTs `body` to `method` with each header of an array sent as that many lines; the status and body of the answer. */
function postLines(
  method: string,
  contentType: string,
  body: Buffer,
  headers: Record<string, string[]>,
): Promise<{ status: number; body: Buffer }> {
  const url = new URL(`${base}/${method}`);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': contentType, ...headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('a header sent more than once (Node joins the lines: "5000, 5000")', () => {
  const setBody = (key: string): Buffer => Buffer.from(JSON.stringify({ key, value: 1 }));

  test('connect-timeout-ms, twice alike, is taken once, on a Set and a Watch (whose deadline it is)', async () => {
    const answer = await postLines('Set', 'application/json', setBody('twice-alike'), { 'connect-timeout-ms': ['5000', '5000'] });
    expect(answer.status).toBe(200);
    expect(await stored('twice-alike')).toBe(true);
    const watched = await postLines('Watch', 'application/connect+json', frame('{"prefix": "nothing-here/"}'), {
      'connect-timeout-ms': ['300', '300'],
    });
    expect(streamError(watched.body)).toMatchObject({ code: 'deadline_exceeded' });
  });

  test('connect-timeout-ms, twice with different values, is invalid_argument saying so, and the Set is not applied', async () => {
    const answer = await postLines('Set', 'application/json', setBody('twice-unlike'), { 'connect-timeout-ms': ['5000', '10'] });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString())).toMatchObject({
      code: 'invalid_argument',
      message: 'connect-timeout-ms was sent more than once, with different values ("5000, 10"): send it once',
    });
    expect(await stored('twice-unlike')).toBe(false);
  });

  test('connect-protocol-version, twice alike, is served; twice unlike, refused saying so', async () => {
    const alike = await postLines('Set', 'application/json', setBody('version-twice'), { 'connect-protocol-version': ['1', '1'] });
    expect(alike.status).toBe(200);
    const unlike = await postLines('Set', 'application/json', setBody('version-unlike'), { 'connect-protocol-version': ['1', '2'] });
    expect(unlike.status).toBe(400);
    expect(JSON.parse(unlike.body.toString())).toMatchObject({
      code: 'invalid_argument',
      message: 'connect-protocol-version was sent more than once, with different values ("1, 2"): send it once',
    });
    expect(await stored('version-unlike')).toBe(false);
  });

  test("gRPC-Web's grpc-timeout, twice alike, is served", async () => {
    const message = Buffer.from('{"key": "grpc-web-twice", "value": 1}');
    const answer = await postLines(
      'Set',
      'application/grpc-web+json',
      Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]),
      {
        'grpc-timeout': ['5S', '5S'],
      },
    );
    expect(answer.body.toString('latin1')).toMatch(/grpc-status: ?0/);
    expect(await stored('grpc-web-twice')).toBe(true);
  });
});

/** As postLines, over HTTP/2 (h2c): each header of an array is sent as that many fields. */
async function postFieldsH2(
  method: string,
  contentType: string,
  body: Buffer,
  headers: Record<string, string[]>,
): Promise<{ status: number; body: Buffer }> {
  const session = http2.connect(`http://${server.httpAddress}`);
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({
        ':method': 'POST',
        ':path': `/kv.v1.KeyValueService/${method}`,
        'content-type': contentType,
        ...headers,
      });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (answer) => (status = Number(answer[':status'])));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
      stream.on('error', reject);
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

describe('one header line holding a comma is one malformed value, not the header sent twice', () => {
  const setBody = (key: string): Buffer => Buffer.from(JSON.stringify({ key, value: 1 }));
  const POSTS = [
    ['HTTP/1.1', postLines],
    ['HTTP/2', postFieldsH2],
  ] as const;
  const TIMEOUT_FORM = 'connect-timeout-ms must be a whole number of milliseconds, 1 to 10 digits (leave it out for no deadline)';

  test.each(POSTS)(
    'over %s, connect-timeout-ms "1,000" is refused as malformed (it was "sent more than once"), also in two lines alike',
    async (protocol, post) => {
      for (const lines of [['1,000'], ['1,000', '1,000']]) {
        const key = `comma-timeout-${protocol}-${lines.length}`;
        const answer = await post('Set', 'application/json', setBody(key), { 'connect-timeout-ms': lines });
        expect(answer.status).toBe(400);
        expect(JSON.parse(answer.body.toString())).toMatchObject({ code: 'invalid_argument', message: `${TIMEOUT_FORM}: got "1,000"` });
        expect(await stored(key)).toBe(false);
      }
      // Two lines with different values are still that.
      const unlike = await post('Set', 'application/json', setBody(`comma-unlike-${protocol}`), { 'connect-timeout-ms': ['5000', '10'] });
      expect(JSON.parse(unlike.body.toString())).toMatchObject({
        message: 'connect-timeout-ms was sent more than once, with different values ("5000, 10"): send it once',
      });
    },
  );

  test('connect-protocol-version "1,1" is refused (it was served as "1")', async () => {
    const answer = await postLines('Set', 'application/json', setBody('comma-version'), { 'connect-protocol-version': ['1,1'] });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString())).toMatchObject({
      code: 'invalid_argument',
      message: 'connect-protocol-version must be "1", the Connect protocol\'s only version: got "1,1"',
    });
    expect(await stored('comma-version')).toBe(false);
  });

  test('connect-timeout-ms "5000,5000" on a Watch ends it invalid_argument (it ran as 5000)', async () => {
    const watched = await postLines('Watch', 'application/connect+json', frame('{"prefix": "nothing-here/"}'), {
      'connect-timeout-ms': ['5000,5000'],
    });
    expect(streamError(watched.body)).toMatchObject({ code: 'invalid_argument', message: `${TIMEOUT_FORM}: got "5000,5000"` });
  });

  test('gRPC-Web\'s grpc-timeout "5S,5S" is refused as connect-es refuses a malformed one (it was served)', async () => {
    const message = Buffer.from('{"key": "comma-grpc-web", "value": 1}');
    const answer = await postLines(
      'Set',
      'application/grpc-web+json',
      Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]),
      { 'grpc-timeout': ['5S,5S'] },
    );
    expect(answer.body.toString('latin1')).toMatch(/grpc-status: ?3\r\n/);
    expect(answer.body.toString('latin1')).toContain('invalid%20grpc%20timeout%20value%3A%205S%2C5S');
    expect(await stored('comma-grpc-web')).toBe(false);
  });
});

/**
 * Sends `method`'s headers with connect-timeout-ms 1 and Expect: 100-continue,
 * and its body only once the server has taken the headers (its 100 Continue,
 * sent as the call starts and its deadline with it) and its deadline has
 * passed; resolves with the status and body of the answer.
 */
function bodyAfterDeadline(method: string, contentType: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  const url = new URL(`${base}/${method}`);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': contentType, 'content-length': body.length, 'connect-timeout-ms': '1', expect: '100-continue' },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    // Waiting for time to pass is the point here: the 1 ms deadline, started before the 100 Continue, is well past after 50 ms.
    request.on('continue', () => setTimeout(() => request.end(body), 50));
    const unanswered = setTimeout(() => request.destroy(new Error(`${method} did not end within 10 s`)), 10_000);
    request.on('close', () => clearTimeout(unanswered));
    request.on('error', reject);
    request.flushHeaders();
  });
}

describe('a deadline that passes before the call’s body comes', () => {
  test('a Set is answered deadline_exceeded and not applied', async () => {
    const answer = await bodyAfterDeadline('Set', 'application/json', Buffer.from('{"key": "late", "value": 1}'));
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body.toString())).toEqual({
      code: 'deadline_exceeded',
      message: 'the deadline passed before the call began: it was not run',
    });
    expect(await stored('late')).toBe(false);
  });

  test('a Watch ends with deadline_exceeded (it used to run on with no deadline)', async () => {
    const answer = await bodyAfterDeadline('Watch', 'application/connect+json', frame('{"prefix": "nothing-here/"}'));
    expect(streamError(answer.body)).toEqual({
      code: 'deadline_exceeded',
      message: 'the deadline passed before the call began: it was not run',
    });
  });
});
