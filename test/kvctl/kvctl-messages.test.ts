/**
 * Mistakes whose first message did not say what to do: an endpoint with a
 * URL scheme, a revision past 2^53-1, a txn compare with >=, plaintext to a
 * TLS server, mutual TLS without a client certificate. Each is one line and its exit code.
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

  beforeAll(async () => {
    certs = makeTestCertificates();
    const identity = ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey];
    [tlsServer, mtlsServer] = await Promise.all([
      startServer({ args: identity }),
      startServer({ args: [...identity, '--tls-client-ca', certs.caCert] }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([tlsServer.stop(), mtlsServer.stop()]);
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
});
