/**
 * kvctl refuses a client certificate outside its validity itself, naming the
 * file and the date: a mutual-TLS server ends such a handshake without a
 * word, so the call would fail as "no connection" (exit 4), the same as a
 * server that is down.
 */
import { issue, issueServer, makeCa, type CertificateFiles } from '../support/certificates';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const dir = makeTempDir('kvctl-client-cert-');
const ca = makeCa(dir, 'ca');
let server: RunningServer;

beforeAll(async () => {
  const serverCert = issueServer(dir, ca);
  server = await startServer({ args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', ca.cert] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const getWith = (cert: CertificateFiles): Promise<KvctlResult> =>
  runKvctl([
    'get',
    'k',
    '--endpoint',
    server.address,
    '--tls-ca',
    ca.cert,
    '--tls-cert',
    cert.cert,
    '--tls-key',
    cert.key,
    '--timeout-ms',
    '5000',
  ]);

test('a valid client certificate gets through (the server answers: not found)', async () => {
  const result = await getWith(issue(dir, ca, 'billing'));
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: '' });
});

test('an expired client certificate: exit 2 (usage), one line naming the file and when it expired', async () => {
  const expired = issue(dir, ca, 'billing', { expired: true, file: 'expired-client' });
  const result = await getWith(expired);
  expect(result).toEqual({
    code: 2,
    stdout: '',
    stderr: `kvctl: --tls-cert ${expired.cert} expired on 2020-01-02T00:00:00Z (servers refuse an expired client certificate)\n`,
  });
});

test('a client certificate not valid yet: exit 2, one line naming the file and the date it starts', async () => {
  const early = issue(dir, ca, 'billing', { notYetValid: true, file: 'early-client' });
  const result = await getWith(early);
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: --tls-cert \S+early-client\.crt is not valid until 2099-01-01T00:00:00Z \([^\n]*\)\n$/);
});

test('given through KV_CLIENT_TLS_CERT, the certificate is named by the variable; kvctl health refuses it too', async () => {
  const expired = issue(dir, ca, 'billing', { expired: true, file: 'expired-env' });
  const env = { KV_ENDPOINTS: server.address, KV_TLS_CA: ca.cert, KV_CLIENT_TLS_CERT: expired.cert, KV_CLIENT_TLS_KEY: expired.key };
  for (const args of [['get', 'k'], ['health']]) {
    const result = await runKvctl([...args, '--timeout-ms', '5000'], { env });
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
    expect(result.stderr).toBe(
      `kvctl: KV_CLIENT_TLS_CERT ${expired.cert} expired on 2020-01-02T00:00:00Z (servers refuse an expired client certificate)\n`,
    );
  }
});
