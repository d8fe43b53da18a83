/**
 * Certificate rotation: new files and a SIGHUP while clients keep calling.
 * Open connections are not dropped (no call fails), new connections get the
 * new certificate, and a bad file on reload keeps the old one and says why.
 */
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { KvClient } from '@kv/client';
import { issue, issueServer, makeCa, read, servedFingerprint } from '../support/certificates';
import { startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

/** Replaces a file the way deploy tools do: write beside it, then rename over it. */
function replace(target: string, source: string): void {
  copyFileSync(source, `${target}.new`);
  renameSync(`${target}.new`, target);
}

test('SIGHUP under load: no call fails, new connections get the new certificate, a bad file keeps the old one', async () => {
  const dir = makeTempDir('kv-rotate-');
  const ca = makeCa(dir, 'ca');
  const first = issueServer(dir, ca, { file: 'first' });
  const second = issueServer(dir, ca, { file: 'second' });
  const fingerprint = (files: { cert: string }): string => new X509Certificate(read(files.cert)).fingerprint256;
  const [certFile, keyFile] = [path.join(dir, 'server.crt'), path.join(dir, 'server.key')];
  replace(certFile, first.cert);
  replace(keyFile, first.key);
  const server = await startServer({ args: ['--tls-cert', certFile, '--tls-key', keyFile] });
  const caPem = read(ca.cert);
  expect(await servedFingerprint(server.address, caPem)).toBe(fingerprint(first));

  const tlsClient = (): KvClient =>
    new KvClient(server.address, { credentials: credentials.createSsl(caPem), retry: { attempts: 1 }, deadlineMs: 10_000 });
  const clients = Array.from({ length: 4 }, tlsClient);
  let running = true;
  let calls = 0;
  const failures: unknown[] = [];
  const load = clients.map(async (kv, c) => {
    for (let i = 0; running; i++) {
      try {
        await kv.set(`load/${c}`, i);
        await kv.get(`load/${c}`);
        calls += 2;
      } catch (error) {
        failures.push(error);
      }
    }
  });
  let loadChecked = false;
  // Fails fast with the first failed call's error rather than a timeout.
  const loadPassed = (count: number) => (): true | undefined => {
    if (failures.length > 0) throw failures[0];
    return calls > count ? true : undefined;
  };
  try {
    await pollUntil('load running', loadPassed(100), 60_000);

    replace(certFile, second.cert);
    replace(keyFile, second.key);
    server.child.kill('SIGHUP');
    await pollUntil(
      'the new certificate served',
      async () => ((await servedFingerprint(server.address, caPem)) === fingerprint(second) ? true : undefined),
      30_000,
    );
    const callsAtRotation = calls;
    const fresh = tlsClient();
    await fresh.set('after/rotation', true);
    fresh.close();

    writeFileSync(certFile, 'not a certificate\n');
    server.child.kill('SIGHUP');
    await pollUntil(
      'the failed reload logged',
      () => (server.output().includes('TLS certificates NOT reloaded') ? true : undefined),
      30_000,
    );
    expect(server.output()).toContain(`${certFile} holds no PEM certificate`);
    expect(await servedFingerprint(server.address, caPem)).toBe(fingerprint(second));

    // A certificate that is not valid yet would fail every new client: refused like an expired one.
    const early = issue(dir, ca, 'localhost', { notYetValid: true, file: 'early' });
    replace(keyFile, early.key);
    replace(certFile, early.cert);
    server.child.kill('SIGHUP');
    await pollUntil(
      'the refused reload logged',
      () => (server.output().includes(`the certificate in ${certFile} (--tls-cert) is not valid until`) ? true : undefined),
      30_000,
    );
    expect(await servedFingerprint(server.address, caPem)).toBe(fingerprint(second));
    const afterBadFile = tlsClient();
    await afterBadFile.set('after/bad-file', true);
    afterBadFile.close();

    await pollUntil('more load after the reloads', loadPassed(callsAtRotation + 100), 60_000);
    loadChecked = true;
  } finally {
    running = false;
    await Promise.all(load);
    for (const kv of clients) kv.close();
    // A test that failed half-way must not leave its server running.
    if (!loadChecked) await server.kill();
  }
  expect(failures).toEqual([]);
  expect(await server.stop()).toBe(0);
});
