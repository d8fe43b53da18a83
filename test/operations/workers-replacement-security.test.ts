/**
 * kv-server --workers 2: a worker started to replace one that died serves
 * with the TLS and auth material the other processes hold (the supervisor's
 * last good), never with what the files say now: not a file that a SIGHUP
 * refused, nor an edit no SIGHUP has applied yet.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { credentials, KvClient } from '@kv/client';
import { hashToken } from '../../src/auth/token';
import { writeAuthFile } from '../support/auth-fixture';
import { issueServer, makeCa, servedFingerprint } from '../support/certificates';
import { clusterChildren, type RunningServer, startServer, killCluster } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

jest.setTimeout(120_000);

let server: RunningServer | undefined;
let open: KvClient[] = [];
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

const lines = (text: string): number => (server?.output() ?? '').split(text).length - 1;

/** SIGKILLs a worker and resolves once the supervisor says its replacement serves. */
async function replaceAWorker(running: RunningServer): Promise<void> {
  const before = lines('worker restarted');
  const worker = clusterChildren(running.child.pid as number).find((c) => c.role === 'worker');
  process.kill((worker as { pid: number }).pid, 'SIGKILL');
  await pollUntil(
    'the replacement worker to serve',
    () => {
      if (running.child.exitCode !== null) throw new Error(`the server exited ${running.child.exitCode}:\n${running.output()}`);
      return lines('worker restarted') > before ? true : undefined;
    },
    60_000,
  );
}

/** Sets app/<i> through `n` new connections (dealt to both workers in turn): 'OK' or the reason each was refused. */
async function setThroughNewConnections(address: string, n: number, options: ConstructorParameters<typeof KvClient>[1]): Promise<string[]> {
  const callers = Array.from(
    { length: n },
    (_, i) => new KvClient(address, { ...options, retry: { attempts: 1 }, channelOptions: { 'grpc.kv_test_channel': Math.random() + i } }),
  );
  open.push(...callers);
  return Promise.all(
    callers.map((kv, i) =>
      kv.set(`app/${i}`, i).then(
        () => 'OK',
        (error: unknown) => (error as { reason?: string }).reason ?? String(error),
      ),
    ),
  );
}

test('after a refused auth file, and after an edit not yet reloaded, a replacement worker keeps the rules every other process has', async () => {
  const dir = makeTempDir();
  const auth = writeAuthFile(dir, { roles: { writer: [{ prefix: 'app/', permission: 'write' }] }, tokens: { app: 'writer' } });
  server = await startServer({ args: ['--workers', '2', '--auth-file', auth.file], env: { KV_LOG_LEVEL: 'info' } });
  const token = auth.tokens.app;
  expect(await setThroughNewConnections(server.address, 4, { token })).toEqual(Array(4).fill('OK'));

  fs.writeFileSync(auth.file, 'roles: [x\n');
  server.child.kill('SIGHUP');
  await pollUntil('the refusal logged', () => (lines('auth file NOT reloaded') > 0 ? true : undefined));
  await replaceAWorker(server);
  expect(await setThroughNewConnections(server.address, 6, { token })).toEqual(Array(6).fill('OK'));

  // A good file that takes the write permission away, with no SIGHUP yet: nothing changes, whichever worker serves.
  const readOnly = {
    roles: { writer: [{ prefix: 'app/', permission: 'read' }] },
    tokens: [{ name: 'app', role: 'writer', sha256: hashToken(token).toString('hex') }],
  };
  fs.writeFileSync(auth.file, JSON.stringify(readOnly));
  await replaceAWorker(server);
  expect(await setThroughNewConnections(server.address, 6, { token })).toEqual(Array(6).fill('OK'));

  // Now reloaded: every worker, the replacement too, applies it.
  server.child.kill('SIGHUP');
  await pollUntil('the write refused through every worker', async () =>
    (await setThroughNewConnections(server!.address, 4, { token })).every((o) => o === 'PERMISSION_DENIED') ? true : undefined,
  );
  expect(server.child.exitCode).toBeNull();
});

test('after a refused certificate, and after a certificate swapped in without a SIGHUP, a replacement worker serves the certificate the others serve', async () => {
  const dir = makeTempDir();
  const ca = makeCa(dir, 'ca');
  const first = issueServer(dir, ca, { file: 'first' });
  const second = issueServer(dir, ca, { file: 'second' });
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  fs.copyFileSync(first.cert, cert);
  fs.copyFileSync(first.key, key);
  server = await startServer({ args: ['--workers', '2', '--tls-cert', cert, '--tls-key', key], env: { KV_LOG_LEVEL: 'info' } });
  const address = server.address;
  const fingerprint = (file: string): string => new X509Certificate(fs.readFileSync(file)).fingerprint256;
  /** The certificate six new connections are served, dealt to both workers in turn. */
  const served = (): Promise<string[]> =>
    Promise.all(Array.from({ length: 6 }, () => servedFingerprint(address, fs.readFileSync(ca.cert))));
  expect(await served()).toEqual(Array(6).fill(fingerprint(first.cert)));

  fs.writeFileSync(cert, 'not a certificate\n');
  server.child.kill('SIGHUP');
  await pollUntil('the refusal logged', () => (lines('TLS certificates NOT reloaded') > 0 ? true : undefined));
  await replaceAWorker(server);
  expect(await served()).toEqual(Array(6).fill(fingerprint(first.cert)));
  const tlsOptions = { credentials: credentials.createSsl(fs.readFileSync(ca.cert)) };
  expect(await setThroughNewConnections(server.address, 4, tlsOptions)).toEqual(Array(4).fill('OK'));

  // A good certificate in place, not yet reloaded.
  fs.copyFileSync(second.key, key);
  fs.copyFileSync(second.cert, cert);
  await replaceAWorker(server);
  expect(await served()).toEqual(Array(6).fill(fingerprint(first.cert)));
  server.child.kill('SIGHUP');
  await pollUntil('every worker to serve the new certificate', async () =>
    (await served()).every((f) => f === fingerprint(second.cert)) ? true : undefined,
  );
});
