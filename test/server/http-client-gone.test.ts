/**
 * Over HTTPS with HTTP/2, a client whose request is answered before its
 * large body is read (401 without credentials; 429 for a body past what is
 * drained) and that then leaves is let go of at once: its connection stops
 * counting against --max-connections-per-address, and SIGTERM does not wait
 * the grace period for it. Node's HTTP/2 over TLS used not to see such a
 * client go (http-connections.ts), so the connection stayed open until a
 * keepalive ping failed, 60 to 90 s later. curl is the client, as in the
 * report: it closes its connection as soon as it has its answer.
 */
import { execFile } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeAuthFile, type AuthFixture } from '../support/auth-fixture';
import { issueServer, makeCa, read, type TestCa } from '../support/certificates';
import { type RunningServer, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const run = promisify(execFile);

let dir: string;
let ca: TestCa;
let auth: AuthFixture;
let serverArgs: string[];
/** Set bodies: 20 MiB (answered 401 without a token, unread) and 80 MiB (429 with one, past the 64 MiB drained). */
let body20: string;
let body80: string;

beforeAll(() => {
  dir = makeTempDir('kv-http-gone-');
  ca = makeCa(dir, 'ca');
  const serverCert = issueServer(dir, ca);
  auth = writeAuthFile(dir, {
    roles: { reader: [{ prefix: 'app/', permission: 'read' }], writer: [{ prefix: 'big/', permission: 'write' }] },
    tokens: { viewer: 'reader', app: 'writer' },
  });
  serverArgs = [
    '--http-listen', '127.0.0.1:0', '--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--auth-file', auth.file,
  ]; // prettier-ignore
  const setBody = (mib: number): string => {
    const file = path.join(dir, `set-${mib}.json`);
    const mebibyte = 'x'.repeat(1024 * 1024);
    const fd = openSync(file, 'w');
    writeSync(fd, '{"key": "big/1", "value": "');
    for (let i = 0; i < mib; i++) writeSync(fd, mebibyte);
    writeSync(fd, '"}');
    closeSync(fd);
    return file;
  };
  body20 = setBody(20);
  body80 = setBody(80);
});

/** curl's Set with `file` as the body, over HTTP/2 (ALPN): the status it got ('000' for none). curl then closes its connection. */
async function curlSet(server: RunningServer, file: string, token?: string): Promise<string> {
  const headers = ['-H', 'content-type: application/json', ...(token === undefined ? [] : ['-H', `authorization: Bearer ${token}`])];
  const { stdout } = await run(
    'curl',
    ['-s', '--http2', '--cacert', ca.cert, '--max-time', '30', '-o', '/dev/null', '-w', '%{http_code}', ...headers,
      '--data-binary', `@${file}`, `https://${server.httpAddress}/kv.v1.KeyValueService/Set`], // prettier-ignore
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  return stdout;
}

/** A reader's Get on a new connection from the same address: its status, or undefined if the connection was refused. */
function readerGet(server: RunningServer): Promise<number | undefined> {
  const [host, port] = server.httpAddress!.split(':');
  return new Promise((resolve) => {
    const request = https.request(
      {
        host,
        port,
        method: 'POST',
        path: '/kv.v1.KeyValueService/Get',
        agent: false,
        ca: read(ca.cert),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.viewer}` },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      },
    );
    request.on('error', () => resolve(undefined));
    request.end(JSON.stringify({ key: 'app/a' }));
  });
}

/** The Get gets through once the connection that held the address's one slot is let go of. */
async function slotFreed(server: RunningServer): Promise<number> {
  const startedAt = Date.now();
  await pollUntil('the address’s connection slot back', async () => ((await readerGet(server)) === 404 ? true : undefined), 5_000);
  return Date.now() - startedAt;
}

test('a client refused before its large body is read, which then leaves, frees its connection at once: 401 without a token, 429 past the drain', async () => {
  const server = await startServer({ args: [...serverArgs, '--max-connections-per-address', '1'] });
  try {
    expect(await readerGet(server)).toBe(404); // the slot is free, and the token good
    expect(await curlSet(server, body20)).toBe('401');
    expect(await slotFreed(server)).toBeLessThan(3_000);
    expect(await curlSet(server, body20)).toBe('401');
    expect(await slotFreed(server)).toBeLessThan(3_000);
    expect(await curlSet(server, body80, auth.tokens.app)).toBe('429');
    expect(await slotFreed(server)).toBeLessThan(3_000);
  } finally {
    expect(await server.stop()).toBe(0);
  }
});

test('SIGTERM right after such clients have left ends in about a second, not the grace period', async () => {
  const server = await startServer({ args: serverArgs });
  expect(await curlSet(server, body20)).toBe('401');
  expect(await curlSet(server, body20)).toBe('401');
  expect(await curlSet(server, body80, auth.tokens.app)).toBe('429');
  const stoppingAt = Date.now();
  expect(await server.stop()).toBe(0);
  expect(Date.now() - stoppingAt).toBeLessThan(2_500);
  expect(server.output()).not.toContain('grace period over');
});
