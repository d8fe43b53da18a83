/**
 * A connection that fails in the TLS handshake: grpc-js passes on OpenSSL's
 * error queue (a hex code, "SSL routines", a source file, a newline) and a
 * timestamp. The KvError says it on one line, without either, and says what
 * to do for the two a person meets most: a server that wants a client
 * certificate (mutual TLS), and TLS spoken to a plaintext port. Real servers,
 * real certificates.
 */
import { rmSync } from 'node:fs';
import { credentials, KvClient, KvError, status } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTestCertificates, type TestCertificates } from '../support/test-certificates';

let certificates: TestCertificates;
let mutualTls: RunningServer;
let plaintext: RunningServer;

beforeAll(async () => {
  certificates = makeTestCertificates();
  const { serverCert, serverKey, caCert } = certificates;
  [mutualTls, plaintext] = await Promise.all([
    startServer({ args: ['--tls-cert', serverCert, '--tls-key', serverKey, '--tls-client-ca', caCert] }),
    startServer(),
  ]);
});
afterAll(async () => {
  await Promise.all([mutualTls.stop(), plaintext.stop()]);
});

/** The KvError a get fails with (one attempt, so at the first failure). */
async function failureOf(kv: KvClient): Promise<KvError> {
  try {
    await kv.get('k');
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  } finally {
    kv.close();
  }
  throw new Error('the get was not refused');
}

const options = { retry: { attempts: 1 }, deadlineMs: 5000 };

test('mutual TLS without a client certificate: one line that says to give one, no OpenSSL text', async () => {
  const error = await failureOf(
    new KvClient(mutualTls.address, { ...options, credentials: credentials.createSsl(certificates.read(certificates.caCert)) }),
  );
  expect({ code: error.code, reason: error.reason, message: error.message }).toEqual({
    code: status.UNAVAILABLE,
    reason: 'UNAVAILABLE',
    message:
      'no connection: the server requires a client certificate (mutual TLS; its TLS handshake ended with "tlsv13 alert certificate required"): ' +
      "give this client's key and certificate: credentials.createSsl(rootCert, key, cert)",
  });
});

test('TLS to a plaintext port: one line that says the server does not speak TLS, no OpenSSL text', async () => {
  const error = await failureOf(
    new KvClient(plaintext.address, { ...options, credentials: credentials.createSsl(certificates.read(certificates.caCert)) }),
  );
  expect({ code: error.code, message: error.message }).toEqual({
    code: status.UNAVAILABLE,
    message: 'no connection: TLS: wrong version number (the server does not speak TLS: check the port, or leave out credentials)',
  });
});

/** grpc-js says only "Failed to connect" when the server closes the connection in the handshake: the client cannot tell why. */
const failedToConnect =
  "no connection: Failed to connect (the server closed the connection as it was set up: a server that requires TLS, reached without it? or, over TLS, one that does not accept this client's certificate?)";

test('plaintext to a TLS port: one line, without the timestamp, with the likely causes', async () => {
  const error = await failureOf(new KvClient(mutualTls.address, options));
  expect({ code: error.code, message: error.message }).toEqual({ code: status.UNAVAILABLE, message: failedToConnect });
});

test('mutual TLS with a client certificate from a CA the server does not trust: the same line, with the likely causes', async () => {
  const other = makeTestCertificates();
  try {
    const { caCert } = certificates;
    const creds = credentials.createSsl(certificates.read(caCert), other.read(other.clientKey), other.read(other.clientCert));
    const error = await failureOf(new KvClient(mutualTls.address, { ...options, credentials: creds }));
    // The server's close reads as "Failed to connect" or, at times, as a reset: either way, with the likely causes.
    expect({ code: error.code, message: error.message }).toEqual({
      code: status.UNAVAILABLE,
      message: error.message.startsWith('no connection: read ECONNRESET')
        ? failedToConnect.replace('Failed to connect', 'read ECONNRESET')
        : failedToConnect,
    });
  } finally {
    rmSync(other.dir, { recursive: true, force: true });
  }
});
