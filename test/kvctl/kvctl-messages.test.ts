/**
 * Mistakes whose first message did not say what to do: an endpoint with a
 * URL scheme, a revision past 2^53-1, a txn compare with >=, plaintext to a
 * TLS server, TLS to a plaintext one, a CA that did not sign the server's
 * certificate, the metrics or HTTP port for the gRPC one, mutual TLS without a
 * client certificate. Each is one line and its exit code, without OpenSSL's
 * or grpc-js's raw text.
 */
import { rmSync } from 'node:fs';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTestCertificates, type TestCertificates } from '../support/test-certificates';

function expectOneLine(result: KvctlResult, code: number, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

describe('flags', () => {
  test('an endpoint given as a URL: drop the scheme (exit 2)', async () => {
    for (const endpoint of ['http://127.0.0.1:1234', 'https://127.0.0.1:1234', 'http://localhost']) {
      const result = await runKvctl(['get', 'k', '--endpoint', endpoint]);
      expectOneLine(result, 2, /without "https?:\/\/".*--tls-ca/);
      expect(result.stderr).not.toMatch(/IPv6|brackets/);
    }
  });

  test('--expected-revision past 2^53-1 is too large, not "not a whole number" (exit 2)', async () => {
    const result = await runKvctl(['set', 'k', '1', '--expected-revision', '99999999999999999999', '--endpoint', '127.0.0.1:1']);
    expectOneLine(result, 2, /--expected-revision: "99999999999999999999" is too large \(at most 2\^53-1 = 9007199254740991\)/);
    const lease = await runKvctl(['set', 'k', '1', '--lease', '99999999999999999999', '--endpoint', '127.0.0.1:1']);
    expectOneLine(lease, 2, /--lease: "99999999999999999999" is too large/);
  });

  test('a client certificate without its key names the missing one as the given one was named: flag or variable (exit 2)', async () => {
    const fromEnv = await runKvctl(['get', 'k', '--endpoint', '127.0.0.1:1'], { env: { KV_CLIENT_TLS_CERT: 'c.pem' } });
    expectOneLine(fromEnv, 2, /^kvctl: KV_CLIENT_TLS_CERT and KV_CLIENT_TLS_KEY go together\n$/);
    const keyFromEnv = await runKvctl(['get', 'k', '--endpoint', '127.0.0.1:1'], { env: { KV_CLIENT_TLS_KEY: 'c.key' } });
    expectOneLine(keyFromEnv, 2, /^kvctl: KV_CLIENT_TLS_CERT and KV_CLIENT_TLS_KEY go together\n$/);
  });

  test('a value "@" without a file name, and del --expected-revision 0, are usage mistakes saying so (exit 2)', async () => {
    expectOneLine(await runKvctl(['set', 'k', '@', '--endpoint', '127.0.0.1:1']), 2, /@ must be followed by the name of the file/);
    expectOneLine(
      await runKvctl(['del', 'k', '--expected-revision', '0', '--endpoint', '127.0.0.1:1']),
      2,
      /--expected-revision: "0" is not a whole number >= 1 \(0 would mean only if the key does not exist/,
    );
  });

  test('restore names what is missing, the file first (exit 2)', async () => {
    expectOneLine(await runKvctl(['restore']), 2, /^kvctl: missing required argument 'file'\n$/);
    expectOneLine(
      await runKvctl(['restore', 'kv.backup']),
      2,
      /^kvctl: required option '--data-dir <dir>' not specified: kvctl restore FILE --data-dir DIR\n$/,
    );
  });

  test('a txn compare with >= or <= is told the operators there are, not that its value is wrong (exit 2)', async () => {
    const txn = (compare: string): Promise<KvctlResult> =>
      runKvctl(['txn', '--if', compare, '--then', 'get k', '--endpoint', '127.0.0.1:1']);
    expectOneLine(
      await txn('mod(k) >= 72'),
      2,
      /^kvctl: --if "mod\(k\) >= 72": ">=" is not an operator: use =, !=, < or > \(for >= 72, write > 71\)\n$/,
    );
    expectOneLine(await txn('version(k) <= 3'), 2, /"<=" is not an operator: use =, !=, < or > \(for <= 3, write < 4\)/);
    expectOneLine(
      await txn('value(k) >= {"a":1}'),
      2,
      /^kvctl: --if "value\(k\) >= \{"a":1\}": ">=" is not an operator: use =, !=, < or >\n$/,
    );
  });

  test('a compare target that is a property every object has (constructor, toString) is not one: exit 2 naming the targets', async () => {
    for (const target of ['constructor', 'toString']) {
      const result = await runKvctl(['txn', '--if', `${target}(k) = 1`, '--then', 'get k', '--endpoint', '127.0.0.1:1']);
      expectOneLine(result, 2, new RegExp(`"${target}" is not mod, create, version, lease or value\\n$`));
    }
  });
});

describe('TLS', () => {
  let certs: TestCertificates;
  let tlsServer: RunningServer;
  let mtlsServer: RunningServer;
  let plainServer: RunningServer;

  beforeAll(async () => {
    certs = makeTestCertificates();
    const identity = ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey];
    [tlsServer, mtlsServer, plainServer] = await Promise.all([
      startServer({ args: identity }),
      startServer({ args: [...identity, '--tls-client-ca', certs.caCert] }),
      startServer({ args: ['--metrics-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'] }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([tlsServer.stop(), mtlsServer.stop(), plainServer.stop()]);
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test('plaintext to a TLS server: exit 4, with the hint that it may need TLS (--tls-ca)', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', tlsServer.address, '--timeout-ms', '3000']);
    expectOneLine(
      result,
      4,
      /^kvctl: 127\.0\.0\.1:\d+: no connection: Failed to connect; the server may require TLS: give --tls-ca \(UNAVAILABLE\)\n$/,
    );
  });

  test('mutual TLS with a client certificate from a CA the server does not trust: exit 4, naming --tls-cert', async () => {
    const other = makeTestCertificates();
    try {
      const result = await runKvctl([
        'get',
        'k',
        '--endpoint',
        mtlsServer.address,
        '--tls-ca',
        certs.caCert,
        '--tls-cert',
        other.clientCert,
        '--tls-key',
        other.clientKey,
        '--timeout-ms',
        '3000',
      ]);
      expectOneLine(
        result,
        4,
        /^kvctl: 127\.0\.0\.1:\d+: no connection: (Failed to connect|read ECONNRESET); the server may not accept the client certificate in --tls-cert \(not signed by a CA it trusts\?\) \(UNAVAILABLE\)\n$/,
      );
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  test('mutual TLS without a client certificate: exit 6, saying to give --tls-cert and --tls-key, no OpenSSL text, not UNAVAILABLE', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', mtlsServer.address, '--tls-ca', certs.caCert, '--timeout-ms', '3000']);
    expectOneLine(
      result,
      6,
      /^kvctl: 127\.0\.0\.1:\d+: the server requires a client certificate \(mutual TLS\): give --tls-cert and --tls-key\n$/,
    );
    expect(result.stderr).not.toMatch(/SSL routines|0A00/);
  });

  test('health over several endpoints, one of them mutual TLS without a client certificate: that one is DENIED (exit 6), not UNREACHABLE', async () => {
    const endpoints = `${tlsServer.address},${mtlsServer.address}`;
    const result = await runKvctl(['health', '--endpoint', endpoints, '--tls-ca', certs.caCert, '--timeout-ms', '3000', '-o', 'json']);
    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toEqual([
      { endpoint: tlsServer.address, status: 'SERVING' },
      {
        endpoint: mtlsServer.address,
        status: 'DENIED',
        error: 'the server requires a client certificate (mutual TLS): give --tls-cert and --tls-key',
      },
    ]);
  });

  /** Neither OpenSSL's error queue, nor a timestamp, nor a newline inside. */
  const RAW_TEXT = /SSL routines|0A00|\.c:\d+|\d{4}-\d\d-\d\dT/;

  test('TLS to a plaintext server: exit 4, saying it does not speak TLS and which flag to drop', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', plainServer.address, '--tls-ca', certs.caCert, '--timeout-ms', '3000']);
    expectOneLine(
      result,
      4,
      /^kvctl: 127\.0\.0\.1:\d+: no connection: the server does not speak TLS: drop --tls-ca, or check the port \(UNAVAILABLE\)\n$/,
    );
    const fromEnv = await runKvctl(['get', 'k', '--endpoint', plainServer.address, '--timeout-ms', '3000'], {
      env: { KV_TLS_CA: certs.caCert },
    });
    expectOneLine(fromEnv, 4, /does not speak TLS: drop KV_TLS_CA,/);
  });

  test('a --tls-ca that did not sign the server certificate: exit 4, saying so in plain words', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', tlsServer.address, '--tls-ca', certs.clientCert, '--timeout-ms', '3000']);
    expectOneLine(result, 4, /: the server's certificate is not signed by the CA in --tls-ca \(UNAVAILABLE\)\n$/);
    expect(result.stderr).not.toMatch(RAW_TEXT);
  });

  test("the metrics port (HTTP/1.1) for the gRPC one: exit 4, saying it is not a gRPC server, without grpc-js's timestamp", async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', plainServer.metricsAddress!, '--timeout-ms', '3000']);
    expectOneLine(result, 4, /^kvctl: 127\.0\.0\.1:\d+: no connection: not a gRPC server: .*--metrics-listen port\? .*\(UNAVAILABLE\)\n$/);
    expect(result.stderr).not.toMatch(RAW_TEXT);
  });

  test('the HTTP port (Connect, gRPC-Web) for the gRPC one: exit 4 (nothing served the call), not 8 (a server error), naming it', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', plainServer.httpAddress!, '--timeout-ms', '3000']);
    expectOneLine(
      result,
      4,
      /^kvctl: 127\.0\.0\.1:\d+: this is kv-server's HTTP port \(Connect, gRPC-Web and the web console\), not its gRPC port: send gRPC calls to its --listen address \(port \d+\) \(NOT_GRPC\)\n$/,
    );
  });

  test('the HTTP port first in a list of endpoints is passed over: the next answers', async () => {
    const endpoints = `${plainServer.httpAddress!},${plainServer.address}`;
    expect(await runKvctl(['set', 'ng/k', '1', '--endpoint', endpoints])).toMatchObject({ code: 0 });
    expect(await runKvctl(['get', 'ng/k', '-o', 'value', '--endpoint', endpoints])).toMatchObject({ code: 0, stdout: '1\n' });
  });

  test('health over several endpoints says the same of each, in its error, without a trailing newline', async () => {
    const tls = await runKvctl([
      'health',
      '--endpoint',
      `${plainServer.address},${tlsServer.address}`,
      '--tls-ca',
      certs.caCert,
      '-o',
      'json',
    ]);
    expect(tls.code).toBe(4);
    expect(JSON.parse(tls.stdout)).toEqual([
      {
        endpoint: plainServer.address,
        status: 'UNREACHABLE',
        error: 'no connection: the server does not speak TLS: drop --tls-ca, or check the port',
      },
      { endpoint: tlsServer.address, status: 'SERVING' },
    ]);
    const metrics = await runKvctl(['health', '--endpoint', `${plainServer.address},${plainServer.metricsAddress!}`, '-o', 'json']);
    expect(metrics.code).toBe(4);
    const [serving, unreachable] = JSON.parse(metrics.stdout) as Array<{ status: string; error?: string }>;
    expect(serving.status).toBe('SERVING');
    expect(unreachable).toMatchObject({
      status: 'UNREACHABLE',
      error: expect.stringMatching(/^no connection: not a gRPC server: [^\n]*metrics-listen[^\n]*\)$/),
    });
  });
});
