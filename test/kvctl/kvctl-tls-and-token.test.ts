import { rmSync } from 'node:fs';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTestCertificates, type TestCertificates } from '../support/test-certificates';
import { startTlsProxy, type TlsProxy } from '../support/tls-proxy';
import { startTokenCheckingServer, type TokenCheckingServer } from '../support/token-checking-server';

/**
 * kvctl's --tls-* and --token flags, the client's side alone: TLS is
 * terminated by a proxy in front of the real server (with openssl-made
 * certificates), and tokens are checked by a small stand-in that records
 * what arrives (kvctl against the server's own TLS and auth:
 * kvctl-tls-server-name and kvctl-token-file).
 */
let certs: TestCertificates;
let server: RunningServer;
let tlsProxy: TlsProxy;
let mtlsProxy: TlsProxy;
let tokenServer: TokenCheckingServer;

beforeAll(async () => {
  certs = makeTestCertificates();
  server = await startServer();
  const identity = { target: server.address, cert: certs.read(certs.serverCert), key: certs.read(certs.serverKey) };
  tlsProxy = await startTlsProxy(identity);
  mtlsProxy = await startTlsProxy({ ...identity, ca: certs.read(certs.caCert) });
  tokenServer = await startTokenCheckingServer('s3cret');
});

afterAll(async () => {
  await Promise.all([tlsProxy.close(), mtlsProxy.close(), tokenServer.close(), server.stop()]);
  rmSync(certs.dir, { recursive: true, force: true });
});

const valueOf = (result: KvctlResult): { code: number | null; stdout: string } => ({ code: result.code, stdout: result.stdout });

describe('TLS', () => {
  test('--tls-ca: kvctl verifies the server certificate and talks TLS', async () => {
    const set = await runKvctl(['set', 'tls/a', '"over TLS"', '--endpoint', tlsProxy.address, '--tls-ca', certs.caCert]);
    expect(set.code).toBe(0);
    const get = await runKvctl(['get', 'tls/a', '-o', 'value'], { env: { KV_ENDPOINTS: tlsProxy.address, KV_TLS_CA: certs.caCert } });
    expect(get).toEqual({ code: 0, stdout: 'over TLS\n', stderr: '' });
  });

  test('a server certificate that --tls-ca did not sign is refused: exit 4', async () => {
    // The client certificate is a certificate, but not the server's issuer.
    const result = await runKvctl(['get', 'tls/a', '--endpoint', tlsProxy.address, '--tls-ca', certs.clientCert, '--timeout-ms', '3000']);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^kvctl: 127\.0\.0\.1:\d+: [^\n]+\n$/);
  });

  test('mutual TLS: a client certificate is required and accepted', async () => {
    const withCert = await runKvctl(['get', 'tls/a', '-o', 'value'], {
      env: {
        KV_ENDPOINTS: mtlsProxy.address,
        KV_TLS_CA: certs.caCert,
        KV_CLIENT_TLS_CERT: certs.clientCert,
        KV_CLIENT_TLS_KEY: certs.clientKey,
      },
    });
    expect(valueOf(withCert)).toEqual({ code: 0, stdout: 'over TLS\n' });
    const withoutCert = await runKvctl(['get', 'tls/a', '--timeout-ms', '3000'], {
      env: { KV_ENDPOINTS: mtlsProxy.address, KV_TLS_CA: certs.caCert },
    });
    expect(withoutCert.code).toBe(6); // denied: the server requires a client certificate (test/kvctl/kvctl-messages.test.ts)
  });

  test('--tls-server-name "localhost." (fully qualified) is sent in the handshake as "localhost", without the dot (RFC 6066)', async () => {
    const before = tlsProxy.servernames.length;
    const set = await runKvctl(['set', 'tls/fqdn', '1', '--endpoint', tlsProxy.address, '--tls-ca', certs.caCert], {
      env: { KV_TLS_SERVER_NAME: 'localhost.' },
    });
    expect(valueOf(set)).toEqual({ code: 0, stdout: expect.stringContaining('"revision"') as string });
    expect(new Set(tlsProxy.servernames.slice(before))).toEqual(new Set(['localhost']));
  });

  test('TLS to an address that is not loopback needs no --insecure; an unreadable PEM file is a usage error', async () => {
    const missing = await runKvctl(['get', 'k', '--endpoint', '192.0.2.1:50051', '--tls-ca', `${certs.dir}/nope.pem`]);
    expect(valueOf(missing)).toEqual({ code: 2, stdout: '' });
    expect(missing.stderr).toMatch(/^kvctl: --tls-ca: cannot read .*nope\.pem: [^\n]+\n$/);
  });

  test('a client key that does not match the certificate, or a PEM file that is not what its flag needs, is a usage error', async () => {
    const mismatched = await runKvctl(['get', 'k', '--endpoint', mtlsProxy.address, '--tls-ca', certs.caCert], {
      env: { KV_CLIENT_TLS_CERT: certs.clientCert, KV_CLIENT_TLS_KEY: certs.serverKey },
    });
    expect(valueOf(mismatched)).toEqual({ code: 2, stdout: '' });
    // Given through the environment, they are named by their variables.
    expect(mismatched.stderr).toMatch(
      /^kvctl: KV_CLIENT_TLS_KEY .*server\.key is not the private key of KV_CLIENT_TLS_CERT .*client\.crt[^\n]*\n$/,
    );

    const keyAsCa = await runKvctl(['get', 'k', '--endpoint', tlsProxy.address, '--tls-ca', certs.clientKey]);
    expect(valueOf(keyAsCa)).toEqual({ code: 2, stdout: '' });
    expect(keyAsCa.stderr).toMatch(/^kvctl: --tls-ca: .*client\.key holds no PEM certificate[^\n]*\n$/);

    const keyAsCert = await runKvctl(['get', 'k', '--endpoint', mtlsProxy.address, '--tls-ca', certs.caCert], {
      env: { KV_CLIENT_TLS_CERT: certs.clientKey, KV_CLIENT_TLS_KEY: certs.clientKey },
    });
    expect(valueOf(keyAsCert)).toEqual({ code: 2, stdout: '' });
    expect(keyAsCert.stderr).toMatch(/^kvctl: KV_CLIENT_TLS_CERT: .*client\.key holds no PEM certificate[^\n]*\n$/);

    const certAsKey = await runKvctl(['get', 'k', '--endpoint', mtlsProxy.address, '--tls-ca', certs.caCert], {
      env: { KV_CLIENT_TLS_CERT: certs.clientCert, KV_CLIENT_TLS_KEY: certs.clientCert },
    });
    expect(valueOf(certAsKey)).toEqual({ code: 2, stdout: '' });
    expect(certAsKey.stderr).toMatch(/^kvctl: KV_CLIENT_TLS_KEY: .*client\.crt is not a PEM private key[^\n]*\n$/);
  });
});

describe('--token', () => {
  test('is sent as "authorization: Bearer <token>", from the flag or KV_TOKEN', async () => {
    const viaFlag = await runKvctl(['get', 'k', '--endpoint', tokenServer.address, '--token', 's3cret']);
    expect(viaFlag.code).toBe(1); // past authentication: the stand-in answers NOT_FOUND
    const viaEnv = await runKvctl(['set', 'k', '1'], { env: { KV_ENDPOINTS: tokenServer.address, KV_TOKEN: 's3cret' } });
    expect(viaEnv.code).toBe(0);
    expect(tokenServer.seen.slice(-2)).toEqual(['Bearer s3cret', 'Bearer s3cret']);
  });

  test('a missing or wrong token exits 6; without one, the line says how kvctl sends one', async () => {
    for (const [args, hint] of [
      [[], ': give kvctl a token with --token-file or --token (KV_TOKEN_FILE, KV_TOKEN)'],
      [['--token', 'wrong'], ''],
      [['--token=wrong'], ''],
    ] as const) {
      const result = await runKvctl(['get', 'k', '--endpoint', tokenServer.address, ...args]);
      expect(valueOf(result)).toEqual({ code: 6, stdout: '' });
      expect(result.stderr).toBe(`kvctl: missing or wrong token (UNAUTHENTICATED)${hint}\n`);
    }
    const viaEnv = await runKvctl(['get', 'k', '--endpoint', tokenServer.address], { env: { KV_TOKEN: 'wrong' } });
    expect(viaEnv.stderr).toBe('kvctl: missing or wrong token (UNAUTHENTICATED)\n');
  });

  test('ls that is denied exits 6 with nothing on stdout (not even the opening "[" of the JSON array)', async () => {
    const result = await runKvctl(['ls', '--endpoint', tokenServer.address, '--token', 'wrong']);
    expect(valueOf(result)).toEqual({ code: 6, stdout: '' });
    expect(result.stderr).toBe('kvctl: missing or wrong token (UNAUTHENTICATED)\n');
  });

  test('a token that cannot travel in a header is a usage error', async () => {
    const result = await runKvctl(['get', 'k', '--endpoint', tokenServer.address, '--token', 'two words']);
    expect(valueOf(result)).toEqual({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(/^kvctl: --token: token must be/);
  });
});
