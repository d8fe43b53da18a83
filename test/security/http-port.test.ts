/**
 * The HTTP port under the same security as the gRPC port: the same auth
 * file decides (bearer tokens, client certificates), with the same codes,
 * messages and reasons; the same certificates serve TLS, mutual TLS
 * included; and the same listen rule refuses an exposed plaintext port.
 */
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import { ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { SetRequest } from '../../src/gen/kv/v1/kv';
import { KeyValueService } from '../../src/gen/kv/v1/kv_pb';
import { bearer, kvClient, outcomeOf, writeAuthFile, type AuthFixture } from '../support/auth-fixture';
import { issue, issueServer, makeCa, read, type CertificateFiles, type TestCa } from '../support/certificates';
import { encodeFrame, ErrorCode, Flag, FrameType, RawHttp2Connection } from '../support/raw-http2';
import { runServerToExit, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const ROLES = {
  reader: [{ prefix: 'app/', permission: 'read' as const }],
  writer: [{ prefix: 'app/', permission: 'write' as const }],
};

async function post(
  base: string,
  method: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; reason: string | null; json: { message?: string; entry?: { value: unknown } } }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/kv.v1.KeyValueService/${method}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return {
    status: response.status,
    reason: response.headers.get('kv-reason'),
    json: (await response.json()) as { message?: string; entry?: { value: unknown } },
  };
}

describe('tokens on the HTTP port', () => {
  let server: RunningServer;
  let auth: AuthFixture;
  let base: string;

  beforeAll(async () => {
    const dir = makeTempDir('kv-http-auth-');
    auth = writeAuthFile(dir, {
      roles: { ...ROLES, operator: [{ prefix: '', permission: 'admin' }] },
      tokens: { viewer: 'reader', app: 'writer', ops: 'operator' },
    });
    server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--auth-file', auth.file] });
    base = `http://${server.httpAddress}`;
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  test('the same caller gets the same answer, code, message and reason on both ports', async () => {
    const grpc = kvClient(server.address);
    const cases: [string, object, string | undefined, number, string][] = [
      ['Get', { key: 'app/a' }, undefined, 401, 'UNAUTHENTICATED'],
      ['Get', { key: 'app/a' }, 'not-a-token', 401, 'UNAUTHENTICATED'],
      ['Set', { key: 'app/a', value: 1 }, auth.tokens.viewer, 403, 'PERMISSION_DENIED'],
      ['Get', { key: 'other/a' }, auth.tokens.app, 403, 'PERMISSION_DENIED'],
    ];
    for (const [method, body, token, status, reason] of cases) {
      const answer = await post(base, method, body, token);
      const rpc = method === 'Get' ? grpc.get : grpc.set;
      const overGrpc = await outcomeOf(grpc, rpc, method === 'Set' ? SetRequest.fromPartial(body) : body, bearer(token));
      expect([answer.status, answer.reason, answer.json.message]).toEqual([status, reason, overGrpc.details]);
      expect(overGrpc.trailers['kv-reason']).toBe(reason);
    }
    grpc.close();
    expect((await post(base, 'Set', { key: 'app/a', value: { n: 1 } }, auth.tokens.app)).status).toBe(200);
    expect((await post(base, 'Get', { key: 'app/a' }, auth.tokens.viewer)).json.entry?.value).toEqual({ n: 1 });
  });

  test('an admin action over HTTP is audited with its method and outcome, as over gRPC', async () => {
    expect((await post(base, 'Clear', { prefix: 'app/' }, auth.tokens.ops)).status).toBe(200);
    const line = await pollUntil('the audit line', () =>
      server
        .output()
        .split('\n')
        .find((l) => l.includes('"audit":"admin"') && l.includes('"method":"/kv.v1.KeyValueService/Clear"')),
    );
    expect(JSON.parse(line)).toMatchObject({ identity: 'token:ops', prefix: 'app/', permission: 'admin', code: 'OK' });
  });

  test('two authorization headers are refused, whichever comes first, over HTTP/1.1 and HTTP/2, as on the gRPC port', () => {
    const bad = 'kv_' + 'A'.repeat(43);
    for (const version of ['--http1.1', '--http2-prior-knowledge']) {
      for (const order of [
        [auth.tokens.app, bad],
        [bad, auth.tokens.app],
      ]) {
        // Node's fetch and http client send a header once; curl sends it twice. The server is another process: curl may block this one.
        const { stdout, stderr, status } = spawnSync('curl', [
          '-sS', version, '--max-time', '30', '-X', 'POST', '-H', 'content-type: application/json',
          '-H', `authorization: Bearer ${order[0]}`, '-H', `authorization: Bearer ${order[1]}`,
          '--data', '{"key": "app/a"}', '-w', '\n%{http_code}', `${base}/kv.v1.KeyValueService/Get`,
        ], { encoding: 'utf8' }); // prettier-ignore
        const [body, code] = stdout.split('\n');
        // Say why if curl got no answer (its exit status and error line), rather than failing to parse nothing.
        if (body === '') throw new Error(`curl ${version} exited ${status}: ${stderr.trim()}`);
        expect([version, code, (JSON.parse(body) as { message?: string }).message]).toEqual([
          version,
          '401',
          'malformed authorization metadata: send exactly one "authorization: Bearer <token>"',
        ]);
      }
    }
  });

  /** Requests the HTTP port answers before reading their body: no token, another Host, an unknown RPC, an unknown path. */
  const refusedRequests = (address: string): [path: string, authority: string][] => [
    ['/kv.v1.KeyValueService/Get', address],
    ['/kv.v1.KeyValueService/Get', 'evil.example:80'],
    ['/kv.v1.KeyValueService/Nope', address],
    ['/nothing', address],
  ];

  test('an HTTP/2 request refused before its body is read (no token, another Host, an unknown RPC or path) is answered once the body is in, not reset (curl 7.88 takes the reset for a failure)', async () => {
    const address = base.slice('http://'.length);
    for (const [requestPath, authority] of refusedRequests(address)) {
      // The server waits up to 1 s for the body: a try where this process stalled half that before sending it is tried again.
      for (let attempt = 1; ; attempt++) {
        const connection = await RawHttp2Connection.open(address);
        try {
          const opened = Date.now();
          connection.openRequest(1, requestPath, authority, [['content-type', 'application/json']]);
          // The server has read the request's headers, and answered it or is about to, before the body is sent.
          await connection.ping();
          if (Date.now() - opened > 500 && attempt < 5) continue;
          connection.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('{"key": "app/a"}')));
          await connection.waitFor('the answer complete', (f) => f.streamId === 1 && (f.flags & Flag.END_STREAM) !== 0);
          // A reset would be sent right after the answer: once a later PING is answered, it would be here.
          await connection.ping();
          const resets = connection.frames.filter((f) => f.streamId === 1 && f.type === FrameType.RST_STREAM);
          expect([requestPath, authority, resets]).toEqual([requestPath, authority, []]);
          break;
        } finally {
          connection.close();
        }
      }
    }
  });

  test('a refused HTTP/2 request whose body does not end within a second is answered, and its stream then closed', async () => {
    const address = base.slice('http://'.length);
    for (const [requestPath, authority] of refusedRequests(address)) {
      const connection = await RawHttp2Connection.open(address);
      try {
        connection.openRequest(1, requestPath, authority, [['content-type', 'application/json']]);
        // Part of a body, and never the rest.
        connection.write(encodeFrame(FrameType.DATA, 0, 1, Buffer.from('{"key": ')));
        await connection.waitFor('the answer complete', (f) => f.streamId === 1 && (f.flags & Flag.END_STREAM) !== 0);
        const reset = await connection.waitFor('the stream closed', (f) => f.streamId === 1 && f.type === FrameType.RST_STREAM);
        expect([requestPath, authority, reset.payload.readUInt32BE(0)]).toEqual([requestPath, authority, ErrorCode.NO_ERROR]);
      } finally {
        connection.close();
      }
    }
  });

  test('credentials come first: a caller without them learns nothing of its request, not even that it is malformed', async () => {
    const response = await fetch(`${base}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"this is": not json',
    });
    expect(response.status).toBe(401);
    // As HTTP has a 401 say how to authenticate.
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="kv"');
  });

  test('a Connect client sends its token as a header and a Watch is authorized like any call', async () => {
    const transport = createConnectTransport({
      baseUrl: base,
      httpVersion: '1.1',
      interceptors: [(next) => (request) => (request.header.set('authorization', `Bearer ${auth.tokens.viewer}`), next(request))],
    });
    const kv = createClient(KeyValueService, transport);
    const denied = await (async () => {
      for await (const _ of kv.watch({ target: { case: 'prefix', value: '' } })) return 'a message';
      return 'no error';
    })().catch((error: unknown) => ConnectError.from(error).metadata.get('kv-reason'));
    expect(denied).toBe('PERMISSION_DENIED');
  });
});

describe('TLS on the HTTP port, from the gRPC port’s certificates', () => {
  let dir: string;
  let ca: TestCa;
  let server: RunningServer;
  let billing: CertificateFiles;

  beforeAll(async () => {
    dir = makeTempDir('kv-http-tls-');
    ca = makeCa(dir, 'ca');
    const serverCert = issueServer(dir, ca);
    billing = issue(dir, ca, 'billing');
    const auth = writeAuthFile(dir, { roles: ROLES, certificates: [{ cn: 'billing', role: 'writer' }] });
    server = await startServer({
      args: [
        '--http-listen',
        '127.0.0.1:0',
        '--tls-cert',
        serverCert.cert,
        '--tls-key',
        serverCert.key,
        '--tls-client-ca',
        ca.cert,
        '--auth-file',
        auth.file,
      ],
    });
    expect(server.output()).toContain(`web console at https://${server.httpAddress}/`);
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  const request = (certificate: CertificateFiles | undefined, body: object): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const [host, port] = server.httpAddress!.split(':');
      const call = https.request(
        {
          host,
          port,
          method: 'POST',
          path: '/kv.v1.KeyValueService/Set',
          headers: { 'content-type': 'application/json' },
          ca: read(ca.cert),
          cert: certificate && read(certificate.cert),
          key: certificate && read(certificate.key),
        },
        (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        },
      );
      call.on('error', reject);
      call.end(JSON.stringify(body));
    });

  test('a client certificate from the CA is an identity from the auth file; without one there is no connection', async () => {
    expect(await request(billing, { key: 'app/from-cert', value: true })).toEqual({
      status: 200,
      body: expect.stringContaining('revision'),
    });
    expect((await request(billing, { key: 'other/x', value: true })).status).toBe(403);
    await expect(request(undefined, { key: 'app/x', value: true })).rejects.toThrow();
  });
});

test('an HTTP port on a non-loopback address without TLS is refused at start, as the gRPC port is', async () => {
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--http-listen', '0.0.0.0:0', '--data-dir', makeTempDir()]);
  expect(code).toBe(2);
  expect(stderr).toContain('refusing to serve plaintext on 0.0.0.0:0');
});
