/**
 * A passphrase-protected private key (kv-server --tls-key, kvctl --tls-key)
 * is named for what it is, with the openssl line that writes a decrypted
 * copy, in one line, at start-up, on SIGHUP (which keeps the old key) and in
 * kvctl: not "not a PEM private key ... interrupted or cancelled", which is
 * all OpenSSL says of a key it has no passphrase for.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { issue, issueServer, makeCa, read, type CertificateFiles } from '../support/certificates';
import { runKvctl } from '../support/kvctl-process';
import { runServerToExit, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const dir = makeTempDir('kv-encrypted-key-');
const ca = makeCa(dir, 'ca');
const server = issueServer(dir, ca);
const client = issue(dir, ca, 'billing');
const PASSPHRASE = 'pass:correct horse';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A certificate with an RSA key (the helpers make EC ones), self-signed: start-up checks the key before any chain. */
function rsaServer(): CertificateFiles {
  const files = { cert: path.join(dir, 'rsa.crt'), key: path.join(dir, 'rsa.key') };
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-subj',
    '/CN=localhost',
    '-days',
    '2',
  ]);
  return files;
}

/** The three forms openssl writes: the old EC/RSA form with "Proc-Type: 4,ENCRYPTED", and PKCS#8 "ENCRYPTED PRIVATE KEY". */
const encryptions: Array<[string, () => CertificateFiles & { plain: string }]> = [
  ['openssl ec -aes256 (Proc-Type: 4,ENCRYPTED)', () => {
    const key = path.join(dir, 'enc-ec.key');
    openssl(['ec', '-in', server.key, '-aes256', '-passout', PASSPHRASE, '-out', key]);
    return { cert: server.cert, key, plain: server.key };
  }],
  ['openssl pkey -aes256 of an RSA key (ENCRYPTED PRIVATE KEY)', () => {
    const rsa = rsaServer();
    const key = path.join(dir, 'enc-rsa.key');
    openssl(['pkey', '-in', rsa.key, '-aes256', '-passout', PASSPHRASE, '-out', key]);
    return { cert: rsa.cert, key, plain: rsa.key };
  }],
  ['openssl rsa -aes256 -traditional (Proc-Type: 4,ENCRYPTED)', () => {
    const rsa = rsaServer();
    const key = path.join(dir, 'enc-rsa-traditional.key');
    openssl(['rsa', '-in', rsa.key, '-aes256', '-traditional', '-passout', PASSPHRASE, '-out', key]);
    return { cert: rsa.cert, key, plain: rsa.key };
  }],
]; // prettier-ignore

/** Runs the openssl line a message gives, through sh in a new directory; the path of the key it wrote. */
function runAdvice(message: string): string {
  const command = /`(openssl pkey [^`]+)`/.exec(message)?.[1];
  expect(command).toBeDefined();
  const cwd = makeTempDir('kv-decrypted-');
  execFileSync('sh', ['-c', `${command as string} -passin '${PASSPHRASE}'`], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  return path.join(cwd, 'key.pem');
}

/** The advice in the message: the openssl line for this very file, and no OpenSSL jargon or stack trace. */
function expectDecryptAdvice(text: string, keyFile: string): void {
  expect(text).toContain(`\`openssl pkey -in ${keyFile} -out key.pem\``);
  expect(text).not.toContain('interrupted or cancelled');
  expect(text).not.toMatch(/\n\s+at /);
}

test.each(encryptions)('kv-server --tls-key with a key from %s: exit 1, one line saying it is encrypted and how to decrypt it', async (_, make) => {
  const files = make();
  const { code, stdout, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', makeTempDir(), '--tls-cert', files.cert, '--tls-key', files.key]);
  expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toContain(`kv-server: ${files.key} (--tls-key) is encrypted (passphrase-protected), and kv does not take encrypted keys`);
  expectDecryptAdvice(stderr, files.key);

  // The advice works: its command, pasted into a shell (with the passphrase given instead of asked for), makes a key kv takes.
  const decrypted = runAdvice(stderr);
  expect(read(decrypted).toString()).toContain('-----BEGIN PRIVATE KEY-----');
  const started = await startServer({ args: ['--tls-cert', files.cert, '--tls-key', decrypted] });
  expect(await started.stop()).toBe(0);
}); // prettier-ignore

test("a key file with a space or a quote in its name is quoted in the openssl line, so that it works when pasted", async () => {
  const key = path.join(dir, "my server's.key");
  openssl(['pkey', '-in', server.key, '-aes256', '-passout', PASSPHRASE, '-out', key]);
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', makeTempDir(), '--tls-cert', server.cert, '--tls-key', key]);
  expect(code).toBe(1);
  expect(stderr).toContain(`-in '${dir}/my server'\\''s.key' -out`);
  expect(read(runAdvice(stderr)).toString()).toContain('-----BEGIN PRIVATE KEY-----');
}); // prettier-ignore

test('SIGHUP with an encrypted key: not loaded, the old key kept, and one log line says the key is encrypted', async () => {
  const keyFile = path.join(dir, 'served.key');
  copyFileSync(server.key, keyFile);
  const running = await startServer({ args: ['--tls-cert', server.cert, '--tls-key', keyFile] });
  try {
    const encrypted = path.join(dir, 'served.key.new');
    openssl(['pkey', '-in', server.key, '-aes256', '-passout', PASSPHRASE, '-out', encrypted]);
    renameSync(encrypted, keyFile);
    running.child.kill('SIGHUP');
    const lines = (): string[] =>
      running
        .output()
        .split('\n')
        .filter((line) => line.includes('TLS certificates NOT reloaded'));
    const [line] = await pollUntil('the refused reload logged', () => (lines().length > 0 ? lines() : undefined), 30_000);
    expect(lines()).toHaveLength(1);
    expect(line).toContain(`${keyFile} (--tls-key) is encrypted (passphrase-protected), and kv does not take encrypted keys`);
    expectDecryptAdvice(line, keyFile);

    // Still serving with the key it had: a new TLS client gets through.
    const get = await runKvctl(['get', 'k', '--endpoint', running.address, '--tls-ca', ca.cert, '--timeout-ms', '5000']);
    expect(get).toEqual({ code: 1, stdout: '', stderr: expect.stringContaining('not found') as unknown });
  } finally {
    expect(await running.stop()).toBe(0);
  }
}, 60_000);

test.each([
  ['the flag', (key: string) => ({ args: ['--tls-key', key], env: {} }), '--tls-key'],
  ['KV_CLIENT_TLS_KEY', (key: string) => ({ args: [], env: { KV_CLIENT_TLS_KEY: key } }), 'KV_CLIENT_TLS_KEY'],
])('kvctl with an encrypted client key (%s): exit 2, one line saying it is encrypted and how to decrypt it', async (_, given, name) => {
  const key = path.join(dir, `enc-client-${name}.key`);
  openssl(['ec', '-in', client.key, '-aes256', '-passout', PASSPHRASE, '-out', key]);
  const { args, env } = given(key);
  // No server is needed: kvctl reads its files before it connects (192.0.2.1 is TEST-NET, never answered).
  const result = await runKvctl(['get', 'k', '--endpoint', '192.0.2.1:50051', '--tls-ca', ca.cert, '--tls-cert', client.cert, ...args], { env });
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toContain(`kvctl: ${name}: ${key} is encrypted (passphrase-protected), and kvctl does not take encrypted keys`);
  expectDecryptAdvice(result.stderr, key);
}); // prettier-ignore
