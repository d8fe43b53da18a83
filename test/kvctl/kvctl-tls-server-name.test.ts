/**
 * kvctl --tls-server-name (KV_TLS_SERVER_NAME): a server whose certificate
 * is issued for "kv.example" only, reached at 127.0.0.1 (as through an ssh
 * tunnel). The certificate is checked against the name given instead of the
 * endpoint's host: still checked, so a wrong name or another CA fails.
 */
import { issue, makeCa } from '../support/certificates';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const dir = makeTempDir('kvctl-server-name-');
const ca = makeCa(dir, 'ca');
let server: RunningServer;

beforeAll(async () => {
  const cert = issue(dir, ca, 'kv.example', { san: ['DNS:kv.example'] });
  server = await startServer({ args: ['--tls-cert', cert.cert, '--tls-key', cert.key] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const outcome = (result: KvctlResult): { code: number | null; stdout: string } => ({ code: result.code, stdout: result.stdout });

const kvctl = (args: string[], env: Record<string, string> = {}): Promise<KvctlResult> =>
  runKvctl([...args, '--endpoint', server.address, '--tls-ca', ca.cert, '--timeout-ms', '5000'], { env });

test('without it, a certificate for kv.example does not do for 127.0.0.1: exit 4, and the line says what to give', async () => {
  const result = await kvctl(['get', 'k']);
  expect(outcome(result)).toEqual({ code: 4, stdout: '' });
  expect(result.stderr).toMatch(
    /^kvctl: 127\.0\.0\.1:\d+: no connection: [^\n]*127\.0\.0\.1 is not in the cert's list: if the server is reached by another name \(an ssh tunnel\), give the name its certificate is issued for with --tls-server-name \(UNAVAILABLE\)\n$/,
  );
});

test('with the name the certificate is issued for, kvctl talks to the server; KV_TLS_SERVER_NAME works too', async () => {
  const set = await kvctl(['set', 'tunnel/a', '"through the tunnel"', '--tls-server-name', 'kv.example']);
  expect(outcome(set)).toEqual({ code: 0, stdout: expect.stringContaining('"revision"') as string });
  const get = await kvctl(['get', 'tunnel/a', '-o', 'value'], { KV_TLS_SERVER_NAME: 'kv.example' });
  expect(get).toEqual({ code: 0, stdout: 'through the tunnel\n', stderr: '' });
  const health = await kvctl(['health', '--tls-server-name', 'kv.example']);
  expect(outcome(health)).toEqual({ code: 0, stdout: expect.stringContaining('SERVING') as string });
});

test('a fully-qualified name with its trailing dot ("kv.example.") is the same name: kvctl talks to the server', async () => {
  const set = await kvctl(['set', 'tunnel/fqdn', '"absolute name"', '--tls-server-name', 'kv.example.']);
  expect(outcome(set)).toEqual({ code: 0, stdout: expect.stringContaining('"revision"') as string });
  const get = await kvctl(['get', 'tunnel/fqdn', '-o', 'value'], { KV_TLS_SERVER_NAME: 'kv.example.' });
  expect(get).toEqual({ code: 0, stdout: 'absolute name\n', stderr: '' });
  // One dot ends the name; an empty label is not a host name.
  const twoDots = await kvctl(['get', 'k', '--tls-server-name', 'kv.example..']);
  expect(twoDots).toEqual({
    code: 2,
    stdout: '',
    stderr:
      'kvctl: --tls-server-name: "kv.example.." is not a host name (give the name the server certificate is issued for, without a port)\n',
  });
});

test('the certificate is still checked: a wrong name, or the right name from a CA not given, fails (exit 4)', async () => {
  const wrongName = await kvctl(['get', 'k', '--tls-server-name', 'other.example']);
  expect(outcome(wrongName)).toEqual({ code: 4, stdout: '' });
  expect(wrongName.stderr).toMatch(
    /^kvctl: 127\.0\.0\.1:\d+: no connection: [^\n]*other\.example[^\n]*kv\.example: the server's certificate is not issued for --tls-server-name other\.example \(UNAVAILABLE\)\n$/,
  );

  const otherCa = makeCa(dir, 'other-ca');
  const untrusted = await runKvctl(['get', 'k', '--endpoint', server.address, '--tls-ca', otherCa.cert, '--tls-server-name', 'kv.example']);
  expect(outcome(untrusted)).toEqual({ code: 4, stdout: '' });
  expect(untrusted.stderr).toMatch(/^kvctl: 127\.0\.0\.1:\d+: [^\n]*not signed by the CA in --tls-ca \(UNAVAILABLE\)\n$/);
});

test('without TLS, or with a port in it, it is a usage error (exit 2), one line naming the flag', async () => {
  const plaintext = await runKvctl(['get', 'k', '--endpoint', server.address, '--tls-server-name', 'kv.example']);
  expect(plaintext).toEqual({
    code: 2,
    stdout: '',
    stderr: 'kvctl: --tls-server-name names the server certificate to expect, which needs TLS: give --tls-ca too\n',
  });
  const withPort = await kvctl(['get', 'k'], { KV_TLS_SERVER_NAME: 'kv.example:443' });
  expect(withPort).toEqual({
    code: 2,
    stdout: '',
    stderr:
      'kvctl: KV_TLS_SERVER_NAME: "kv.example:443" is not a host name (give the name the server certificate is issued for, without a port)\n',
  });
});
