/**
 * Mutual TLS on one server: a client certificate from the configured CA is
 * an identity (by CN or by SAN) mapped to a role in the auth file; no
 * certificate, one from another CA, or an expired one never gets a call
 * through.
 */
import { credentials, status } from '@grpc/grpc-js';
import { KvClient, KvError } from '@kv/client';
import { issue, issueServer, makeCa, read, type CertificateFiles, type TestCa } from '../support/certificates';
import { bearer, kvClient, outcomeOf, writeAuthFile } from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let dir: string;
let ca: TestCa;
let server: RunningServer;
let adminToken: string;

beforeAll(async () => {
  dir = makeTempDir('kv-mtls-');
  ca = makeCa(dir, 'ca');
  const serverCert = issueServer(dir, ca);
  const auth = writeAuthFile(
    dir,
    {
      roles: {
        reader: [{ prefix: 'app/', permission: 'read' }],
        writer: [{ prefix: 'app/', permission: 'write' }],
        admin: [{ prefix: '', permission: 'admin' }],
      },
      tokens: { ops: 'admin' },
      certificates: [
        { cn: 'billing', role: 'writer' },
        { san: 'URI:spiffe://test/reporting', role: 'reader' },
      ],
    },
    'auth.yaml',
  );
  adminToken = auth.tokens.ops;
  server = await startServer({
    args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', ca.cert, '--auth-file', auth.file],
  });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const client = (certificate?: CertificateFiles, token?: string): KvClient =>
  new KvClient(server.address, {
    credentials: credentials.createSsl(read(ca.cert), certificate && read(certificate.key), certificate && read(certificate.cert)),
    token,
    retry: { attempts: 1 },
    deadlineMs: 5000,
  });

async function failure(promise: Promise<unknown>): Promise<KvError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof KvError)) throw new Error(`expected a KvError, got ${String(error)}`);
  return error;
}

test('a certificate is an identity by its CN', async () => {
  const kv = client(issue(dir, ca, 'billing'));
  await kv.set('app/invoice', 1);
  expect((await failure(kv.set('other/x', 1))).reason).toBe('PERMISSION_DENIED');
  kv.close();
});

test('a certificate is an identity by a subject alternative name', async () => {
  const kv = client(issue(dir, ca, 'reporting-7f3a', { san: ['DNS:reporting.internal', 'URI:spiffe://test/reporting'] }));
  expect(await kv.get('app/none')).toBeUndefined();
  const denied = await failure(kv.set('app/x', 1));
  expect(denied.code).toBe(status.PERMISSION_DENIED);
  expect(denied.message).toContain('write on key "app/x"');
  kv.close();
});

test('a certificate whose subject has several CNs is named by none of them (UNAUTHENTICATED, saying so); a SAN entry still names it', async () => {
  const several = client(issue(dir, ca, 'several', { subject: '/O=test/CN=nobody/CN=billing' }));
  const error = await failure(several.set('app/invoice', 2));
  expect(error.reason).toBe('UNAUTHENTICATED');
  expect(error.message).toContain('client certificate CN=nobody,CN=billing has more than one CN');
  several.close();
  const bySan = client(issue(dir, ca, 'several-san', { subject: '/CN=a/CN=b', san: ['URI:spiffe://test/reporting'] }));
  expect(await bySan.get('app/none')).toBeUndefined();
  bySan.close();
});

test('a good certificate that the auth file does not name is UNAUTHENTICATED; a token still works over it', async () => {
  const stranger = issue(dir, ca, 'stranger');
  const anonymous = client(stranger);
  const error = await failure(anonymous.get('app/x'));
  expect(error.reason).toBe('UNAUTHENTICATED');
  expect(error.message).toContain('CN=stranger');
  anonymous.close();
  const withToken = client(stranger, adminToken);
  await withToken.set('anything', 'ok');
  withToken.close();
});

test.each([
  ['no client certificate', (): CertificateFiles | undefined => undefined],
  ['a certificate from another CA', (): CertificateFiles => issue(dir, makeCa(dir, 'other-ca'), 'billing')],
  ['an expired certificate', (): CertificateFiles => issue(dir, ca, 'billing', { expired: true, file: 'billing-expired' })],
])('%s: the handshake fails, no call gets through (UNAVAILABLE)', async (_, certificate) => {
  const kv = kvClient(
    server.address,
    (() => {
      const files = certificate();
      return credentials.createSsl(read(ca.cert), files && read(files.key), files && read(files.cert));
    })(),
  );
  // Even a valid token does not help without a valid certificate.
  const outcome = await outcomeOf(kv, kv.set, { key: 'app/x', value: 1, lease: 0, ttlMs: 0 }, bearer(adminToken));
  expect(outcome.code).toBe(status[status.UNAVAILABLE]);
  kv.close();
});
