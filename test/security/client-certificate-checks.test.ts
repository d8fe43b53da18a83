/**
 * Mutual TLS keeps checking a client certificate after the handshake: a
 * connection whose certificate no longer chains to --tls-client-ca after a
 * reload (SIGHUP), or whose certificate expires, is closed, and its open
 * streams end UNAUTHENTICATED with the reason; connections whose
 * certificates still verify go on. On the gRPC port, the HTTP port, and
 * under --workers.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { credentials, status } from '@grpc/grpc-js';
import { KvClient, type KvError } from '@kv/client';
import { KeyValueService } from '../../src/gen/kv/v1/kv_pb';
import { issue, issueServer, makeCa, makeIntermediateCa, read, type CertificateFiles, type TestCa } from '../support/certificates';
import { startKvctl, type RunningKvctl } from '../support/kvctl-process';
import { killCluster, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

jest.setTimeout(120_000);

/** kvctl's exit code for UNAUTHENTICATED (and PERMISSION_DENIED). */
const DENIED = 6;

let dir: string;
/** Stays in the client CA file: its clients' certificates chain through an intermediate CA they send. */
let kept: TestCa;
let keptIntermediate: TestCa;
/** Taken out of the client CA file. */
let removed: TestCa;
let caFile: string;
let server: RunningServer | undefined;
const cleanups: (() => void)[] = [];

beforeEach(() => {
  dir = makeTempDir('kv-cert-checks-');
  kept = makeCa(dir, 'kept-ca');
  keptIntermediate = makeIntermediateCa(dir, kept, 'kept-intermediate');
  removed = makeCa(dir, 'removed-ca');
  caFile = path.join(dir, 'client-cas.pem');
  writeCaFile([kept, removed]);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

/** Writes the client CA file as deploy tools do: beside it, then renamed over it. */
function writeCaFile(cas: TestCa[]): void {
  writeFileSync(`${caFile}.new`, cas.map((ca) => read(ca.cert).toString()).join(''));
  renameSync(`${caFile}.new`, caFile);
}

async function start(args: string[] = []): Promise<RunningServer> {
  const serverCert = issueServer(dir, kept);
  server = await startServer({
    args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', caFile, ...args],
    env: { KV_LOG_LEVEL: 'info' },
  });
  return server;
}

/** A client certificate of the kept CA, through its intermediate (the file holds both, the client sends both). */
function keptClientCertificate(name: string): CertificateFiles {
  const files = issue(dir, keptIntermediate, name);
  const chain = path.join(dir, `${name}-chain.crt`);
  writeFileSync(chain, read(files.cert).toString() + read(keptIntermediate.cert).toString());
  return { cert: chain, key: files.key };
}

function kvClient(address: string, certificate: CertificateFiles): KvClient {
  const kv = new KvClient(address, {
    credentials: credentials.createSsl(read(kept.cert), read(certificate.key), read(certificate.cert)),
    retry: { attempts: 1 },
    deadlineMs: 5000,
  });
  cleanups.push(() => kv.close());
  return kv;
}

function kvctlWatch(address: string, certificate: CertificateFiles): RunningKvctl {
  const watch = startKvctl(['watch', '--prefix', 'app/'], {
    KV_ENDPOINTS: address,
    KV_TLS_CA: kept.cert,
    KV_CLIENT_TLS_CERT: certificate.cert,
    KV_CLIENT_TLS_KEY: certificate.key,
  });
  cleanups.push(() => watch.child.kill('SIGKILL'));
  return watch;
}

/** A client that calls every 200 ms until stopped: how many calls succeeded, and the failures. */
function callingClient(kv: KvClient, key: string): { ok: () => number; failures: KvError[]; stop(): void } {
  let ok = 0;
  const failures: KvError[] = [];
  let running = true;
  void (async () => {
    for (let i = 0; running; i++) {
      await kv.set(key, i).then(
        () => ok++,
        (error: unknown) => failures.push(error as KvError),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const stop = (): void => void (running = false);
  cleanups.push(stop);
  return { ok: () => ok, failures, stop };
}

/** How many connections the reload lines say were closed, summed over the processes. */
function closedByReloads(output: string): number[] {
  return [...output.matchAll(/closed (\d+) open connection\(s\) whose client certificate no longer chains/g)].map((m) => Number(m[1]));
}

test('removing a CA from --tls-client-ca and SIGHUP ends its clients’ Watch (UNAUTHENTICATED) and connections; a client of a CA still there goes on', async () => {
  const running = await start();
  const removedCert = issue(dir, removed, 'removed-client');
  const keptCert = keptClientCertificate('kept-client');

  const removedWatch = kvctlWatch(running.address, removedCert);
  const keptWatch = kvctlWatch(running.address, keptCert);
  const removedCalls = callingClient(kvClient(running.address, removedCert), 'app/removed');
  const keptCalls = callingClient(kvClient(running.address, keptCert), 'app/kept');
  await pollUntil('both watches and both clients to run', () =>
    removedWatch.stdout().includes('app/kept') && keptWatch.stdout().includes('app/removed') && removedCalls.ok() > 1 && keptCalls.ok() > 1
      ? true
      : undefined,
  );
  expect([...removedCalls.failures, ...keptCalls.failures]).toEqual([]);

  writeCaFile([kept]);
  running.child.kill('SIGHUP');
  const ended = await pollUntil(
    'the removed CA’s watch to end',
    () => Promise.race([removedWatch.ended, Promise.resolve(undefined)]),
    15_000,
  );
  expect(ended.code).toBe(DENIED);
  expect(removedWatch.stderr()).toContain("this connection's client certificate is no longer trusted: the server's client CAs changed");
  // Its calls: the connection is gone, and a new one is refused in the handshake.
  const refused = await pollUntil('the removed CA’s client to be refused', () => removedCalls.failures[0], 15_000);
  expect(refused.code).toBe(status.UNAVAILABLE);
  const okWhenRefused = removedCalls.ok();

  // The kept CA's watch and client go on, on the connections they had.
  const seen = keptWatch.stdout().length;
  const keptSoFar = keptCalls.ok();
  await pollUntil('the kept client to go on calling, and its watch to see it', () =>
    keptCalls.ok() > keptSoFar + 2 && keptWatch.stdout().length > seen ? true : undefined,
  );
  expect(keptCalls.failures).toEqual([]);
  expect(keptWatch.child.exitCode).toBeNull();
  expect(removedCalls.ok()).toBe(okWhenRefused);
  // A new connection of the kept CA, made right after the reload, is let in and stays.
  const fresh = kvClient(running.address, keptCert);
  await fresh.set('app/fresh', 1);
  expect(await fresh.get('app/fresh')).toMatchObject({ value: 1 });
  expect(closedByReloads(running.output())).toEqual([2]);
  // No certificate's contents in the log.
  expect(running.output()).not.toMatch(/removed-client|kept-client|BEGIN CERTIFICATE/);
});

test('on the HTTP port: a Watch over HTTP/2 and one over HTTP/1.1 end UNAUTHENTICATED; a kept client’s Watch goes on', async () => {
  const running = await start(['--http-listen', '127.0.0.1:0']);
  const removedCert = issue(dir, removed, 'removed-client');
  const keptCert = keptClientCertificate('kept-client');
  const connect = (certificate: CertificateFiles, httpVersion: '1.1' | '2') =>
    createClient(
      KeyValueService,
      createConnectTransport({
        baseUrl: `https://${running.httpAddress}`,
        httpVersion,
        nodeOptions: { ca: read(kept.cert), cert: read(certificate.cert), key: read(certificate.key), servername: 'localhost' },
      }),
    );
  const watch = (certificate: CertificateFiles, httpVersion: '1.1' | '2') => {
    const state = { events: 0, ended: undefined as string | undefined };
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    void (async () => {
      for await (const message of connect(certificate, httpVersion).watch(
        { target: { case: 'prefix', value: 'app/' } },
        { signal: controller.signal },
      ))
        state.events += message.events.length;
      state.ended = 'OK';
    })().catch((error: unknown) => {
      const failure = ConnectError.from(error);
      state.ended = `${Code[failure.code]}: ${failure.rawMessage}`;
    });
    return state;
  };
  const watches = { h2: watch(removedCert, '2'), h1: watch(removedCert, '1.1'), kept: watch(keptCert, '2') };
  const writer = kvClient(running.address, keptCert);
  await pollUntil('the three watches to see a change', async () => {
    await writer.set('app/x', 1);
    return Object.values(watches).every((state) => state.events > 0) ? true : undefined;
  });

  writeCaFile([kept]);
  running.child.kill('SIGHUP');
  for (const state of [watches.h2, watches.h1]) {
    expect(await pollUntil('a removed CA’s watch to end', () => state.ended, 15_000)).toBe(
      "Unauthenticated: this connection's client certificate is no longer trusted: the server's client CAs changed; connect again with a certificate from a CA it trusts",
    );
  }
  const seen = watches.kept.events;
  await pollUntil('the kept watch to go on', async () => {
    await writer.set('app/x', 2);
    return watches.kept.events > seen ? true : undefined;
  });
  expect(watches.kept.ended).toBeUndefined();
  expect(closedByReloads(running.output())).toEqual([2]);
});

test('under --workers 2, each worker closes its connections of the removed CA', async () => {
  const running = await start(['--workers', '2']);
  const removedCert = issue(dir, removed, 'removed-client');
  const keptCert = keptClientCertificate('kept-client');
  // Four connections each: the supervisor deals them to the workers in turn.
  const removedWatches = Array.from({ length: 4 }, () => kvctlWatch(running.address, removedCert));
  const keptWatches = Array.from({ length: 4 }, () => kvctlWatch(running.address, keptCert));
  const writer = kvClient(running.address, keptCert);
  await pollUntil('every watch to see a change', async () => {
    await writer.set('app/x', 1);
    return [...removedWatches, ...keptWatches].every((watch) => watch.stdout().includes('app/x')) ? true : undefined;
  });

  writeCaFile([kept]);
  running.child.kill('SIGHUP');
  for (const watch of removedWatches) {
    const ended = await pollUntil('a removed CA’s watch to end', () => Promise.race([watch.ended, Promise.resolve(undefined)]), 15_000);
    expect(ended.code).toBe(DENIED);
  }
  // One line from each worker, with what it closed.
  const closed = await pollUntil('both workers to say what they closed', () => {
    const counts = closedByReloads(running.output());
    return counts.length === 2 ? counts : undefined;
  });
  expect(closed.reduce((a, b) => a + b, 0)).toBe(4);
  await writer.set('app/x', 2);
  for (const watch of keptWatches)
    await pollUntil('a kept watch to go on', () => (watch.stdout().includes('"value":2') ? true : undefined));
  for (const watch of keptWatches) expect(watch.child.exitCode).toBeNull();
});

test('a connection is closed once its client certificate expires: its Watch ends UNAUTHENTICATED, saying so', async () => {
  const running = await start();
  const expiresAt = new Date(Math.ceil((Date.now() + 6000) / 1000) * 1000);
  const shortLived = issue(dir, kept, 'short-lived', { notAfter: expiresAt });
  const keptCert = keptClientCertificate('kept-client');
  const watch = kvctlWatch(running.address, shortLived);
  const keptWatch = kvctlWatch(running.address, keptCert);
  const calls = callingClient(kvClient(running.address, shortLived), 'app/short-lived');
  const writer = kvClient(running.address, keptCert);
  await pollUntil('both watches to see a change, and the short-lived certificate’s calls to go through', async () => {
    await writer.set('app/x', 1);
    return watch.stdout().includes('app/x') && keptWatch.stdout().includes('app/x') && calls.ok() > 0 ? true : undefined;
  });
  expect(Date.now()).toBeLessThan(expiresAt.getTime());
  expect(calls.failures).toEqual([]);

  const ended = await pollUntil('the watch to end', () => Promise.race([watch.ended, Promise.resolve(undefined)]), 30_000);
  expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
  expect(ended.code).toBe(DENIED);
  expect(watch.stderr()).toContain(`this connection's client certificate expired at ${expiresAt.toISOString()}`);
  // Its calls: the connection is gone, and a new one is refused in the handshake.
  expect((await pollUntil('the calls to be refused', () => calls.failures[0], 15_000)).code).toBe(status.UNAVAILABLE);
  await pollUntil('the closing logged', () =>
    running.output().includes('closed 1 connection(s) whose client certificate') ? true : undefined,
  );
  await writer.set('app/x', 2);
  expect(keptWatch.child.exitCode).toBeNull();
});
