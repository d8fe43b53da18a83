/**
 * How a client certificate is checked again after the handshake
 * (client-certificate-checks.ts trustedPath): as OpenSSL builds its chain,
 * from the client's certificate through those it sent and those of the CA
 * file to a self-issued CA certificate of the file.
 */
import { X509Certificate } from 'node:crypto';
import { trustedPath } from '../../src/server/client-certificate-checks';
import { issue, makeCa, makeIntermediateCa, read, renewCa, type TestCa } from '../support/certificates';
import { makeTempDir } from '../support/temp-dirs';

const dir = makeTempDir('kv-cert-paths-');
const root = makeCa(dir, 'root');
const intermediate = makeIntermediateCa(dir, root, 'intermediate');
const other = makeCa(dir, 'other');
const x509 = (file: string): X509Certificate => new X509Certificate(read(file));
const cas = (...list: TestCa[]): X509Certificate[] => list.map((ca) => x509(ca.cert));
const names = (path: X509Certificate[] | undefined): string[] | undefined => path?.map((certificate) => certificate.subject);

const leaf = x509(issue(dir, intermediate, 'client').cert);
/** As the TLS stack gives it after the handshake: the client's certificate, the intermediate it sent, the root from the CA file. */
const chain = [leaf, x509(intermediate.cert), x509(root.cert)];

test('a certificate chains through the intermediate the client sent to a root of the CA file', () => {
  expect(names(trustedPath(chain, cas(other, root)))).toEqual(['CN=client', 'CN=intermediate', 'CN=root']);
});

test('without its root in the CA file there is no path, even with the intermediate there (no partial chains, as OpenSSL)', () => {
  expect(trustedPath(chain, cas(other))).toBeUndefined();
  expect(trustedPath(chain, cas(other, intermediate))).toBeUndefined();
});

test('an intermediate of the CA file is a step when the client sent only its own certificate', () => {
  expect(names(trustedPath([leaf], cas(intermediate, root)))).toEqual(['CN=client', 'CN=intermediate', 'CN=root']);
  expect(trustedPath([leaf], cas(root))).toBeUndefined();
});

test('a root renewed with the same key and name still anchors the chain the client had', () => {
  const renewed = renewCa(dir, root);
  const path = trustedPath(chain, [x509(renewed.cert)]);
  expect(names(path)).toEqual(['CN=client', 'CN=intermediate', 'CN=root']);
  expect(path?.[2].fingerprint256).toBe(x509(renewed.cert).fingerprint256);
});

test('a certificate of another CA, or one that merely names a CA of the file as its issuer, has no path', () => {
  expect(trustedPath([x509(issue(dir, other, 'stranger').cert)], cas(root, intermediate))).toBeUndefined();
  // Same issuer name as the root, signed by another key.
  const impostor = makeCa(makeTempDir('kv-cert-impostor-'), 'root');
  expect(trustedPath([x509(issue(dir, impostor, 'forged', { file: 'forged' }).cert)], cas(root))).toBeUndefined();
});
