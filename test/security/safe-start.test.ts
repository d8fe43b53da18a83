/**
 * Safe defaults at start-up: no plaintext (and no unauthenticated access)
 * on an address other machines can reach unless --insecure says so, and
 * unusable certificate or auth files stop the server with one line naming
 * the file.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isLoopbackHost } from '../../src/security/listen-policy';
import { issue, issueServer, makeCa } from '../support/certificates';
import { runServerToExit, startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const dir = makeTempDir('kv-safe-start-');
const ca = makeCa(dir, 'ca');
const serverCert = issueServer(dir, ca);
const tlsArgs = ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key];

function expectOneLine(stderr: string, ...parts: string[]): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  for (const part of parts) expect(stderr).toContain(part);
  expect(stderr).not.toMatch(/\n\s+at /);
}

test('plaintext on a non-loopback address is refused: exit 2, one line saying how to enable TLS or pass --insecure', async () => {
  const { code, stdout, stderr } = await runServerToExit(['--listen', '0.0.0.0:0', '--data-dir', makeTempDir()]);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expectOneLine(stderr, '0.0.0.0:0', '--tls-cert', '--tls-key', '--insecure');
});

test('TLS without an auth file or client CA on a non-loopback address is refused too', async () => {
  const { code, stderr } = await runServerToExit(['--listen', '0.0.0.0:0', '--data-dir', makeTempDir(), ...tlsArgs]);
  expect(code).toBe(2);
  expectOneLine(stderr, '--auth-file', '--tls-client-ca', '--insecure');
});

test('--insecure (or KV_INSECURE=1) serves a non-loopback address knowingly', async () => {
  const server = await startServer({ args: ['--listen', '0.0.0.0:0'], env: { KV_INSECURE: '1' } });
  expect(server.address).toMatch(/^0\.0\.0\.0:\d+$/);
  expect(await server.stop()).toBe(0);
});

test('loopback addresses are 127.0.0.0/8, ::1 and localhost; nothing else is', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '[::1]', '::1', 'localhost', '[::ffff:127.0.0.1]']) expect(isLoopbackHost(host)).toBe(true);
  for (const host of ['0.0.0.0', '[::]', '10.0.0.1', '[::ffff:10.0.0.1]', 'kv.internal', 'localhost.evil.example', '128.0.0.1']) {
    expect(isLoopbackHost(host)).toBe(false);
  }
});

test.each([
  ['a missing certificate file', (): string[] => ['--tls-cert', path.join(dir, 'missing.crt'), '--tls-key', serverCert.key], 'missing.crt'],
  ['a key that is not the certificate\'s', (): string[] => ['--tls-cert', serverCert.cert, '--tls-key', issue(dir, ca, 'other').key], 'is not the private key'],
  ['an expired certificate', (): string[] => {
    const expired = issue(dir, ca, 'localhost', { expired: true, file: 'expired-server' });
    return ['--tls-cert', expired.cert, '--tls-key', expired.key];
  }, 'expired'],
  ['a certificate not valid yet', (): string[] => {
    const early = issue(dir, ca, 'localhost', { notYetValid: true, file: 'early-server' });
    return ['--tls-cert', early.cert, '--tls-key', early.key];
  }, 'is not valid until Jan  1 00:00:00 2099 GMT'],
  ['a client CA file without certificates', (): string[] => {
    writeFileSync(path.join(dir, 'empty-ca.pem'), '');
    return [...tlsArgs, '--tls-client-ca', path.join(dir, 'empty-ca.pem')];
  }, 'empty-ca.pem holds no PEM certificate (--tls-client-ca)'],
  ['a key file given as the certificate', (): string[] => ['--tls-cert', serverCert.key, '--tls-key', serverCert.key], 'holds no PEM certificate (--tls-cert)'],
  ['an auth file with a token for a role it does not define', (): string[] => {
    writeFileSync(path.join(dir, 'bad-auth.yaml'), `roles: {}\ntokens:\n  - { name: a, role: ghost, sha256: ${'ab'.repeat(32)} }\n`);
    return ['--auth-file', path.join(dir, 'bad-auth.yaml')];
  }, 'tokens[0].role: no role "ghost"'],
  ['an auth file with a misspelt field', (): string[] => {
    writeFileSync(path.join(dir, 'typo.json'), JSON.stringify({ roles: { r: [{ prefix: 'a/', permision: 'read' }] } }));
    return ['--auth-file', path.join(dir, 'typo.json')];
  }, 'unknown field "permision"'],
])('%s stops start-up: exit 1, one line', async (_, args, expected) => {
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', makeTempDir(), ...args()]);
  expect(code).toBe(1);
  expectOneLine(stderr, expected);
}); // prettier-ignore

test('--tls-key without --tls-cert, or a client CA without TLS, is a flag mistake: exit 2', async () => {
  const keyOnly = await runServerToExit(['--tls-key', serverCert.key]);
  expect(keyOnly.code).toBe(2);
  expect(keyOnly.stderr).toContain('--tls-cert and --tls-key go together');
  const caOnly = await runServerToExit(['--tls-client-ca', ca.cert]);
  expect(caOnly.code).toBe(2);
  expect(caOnly.stderr).toContain('--tls-client-ca needs TLS');
});

test.each([['--auth-file'], ['--tls-cert'], ['--tls-key'], ['--tls-client-ca'], ['--restore-from']])(
  '%s given empty (a shell variable that is not set) is a flag mistake: exit 2, not a server without it',
  async (flag) => {
    const { code, stdout, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', makeTempDir(), flag, '']);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr.split('\n')[0]).toBe(`kv-server: ${flag}: must not be empty (give a file, or leave the flag out)`);
  },
);

test('an empty KV_AUTH_FILE is one left unset, as for every KV_* variable', async () => {
  const server = await startServer({ args: ['--listen', '127.0.0.1:0'], env: { KV_AUTH_FILE: '' } });
  expect(server.output()).toContain('no auth');
  expect(await server.stop()).toBe(0);
});
