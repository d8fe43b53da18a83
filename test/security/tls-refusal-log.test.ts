/**
 * A TLS handshake the server refuses (mutual TLS without a client
 * certificate, with an expired, not yet valid or foreign one; a plaintext
 * client on a TLS port) is one warn line naming the port, the client's
 * address and the reason, on the gRPC port and on the HTTP port, in one
 * process and under --workers; a client that keeps retrying gets a bounded
 * number of lines, with a count.
 */
import { execFile } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { credentials } from '@grpc/grpc-js';
import { KvClient } from '@kv/client';
import { issue, issueServer, makeCa, read, type CertificateFiles, type TestCa } from '../support/certificates';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { TLS_REFUSAL_LOG_EVERY_MS } from '../../src/server/tls-refusals';

let dir: string;
let ca: TestCa;
let serverCert: CertificateFiles;

beforeAll(() => {
  dir = makeTempDir('kv-tls-refusals-');
  ca = makeCa(dir, 'ca');
  serverCert = issueServer(dir, ca);
});

const mutualTls = (): string[] => ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', ca.cert];

interface RefusalLine {
  level: number;
  port: 'grpc' | 'http';
  peer?: string;
  reason?: string;
  refused: number;
  reasons?: Record<string, number>;
  addresses?: string[];
  refusedFromOtherAddresses?: number;
  msg: string;
}

/** The server's refused-handshake lines so far, on `port`. */
function refusalLines(server: RunningServer, port: 'grpc' | 'http'): RefusalLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('TLS handshake'))
    .map((line) => JSON.parse(line) as RefusalLine)
    .filter((line) => line.port === port && / refused .*TLS handshake/.test(line.msg));
}

/** Waits (5 s at most) for the first refused-handshake line of `port`. */
const firstLine = (server: RunningServer, port: 'grpc' | 'http'): Promise<RefusalLine> =>
  pollUntil(`a refused TLS handshake to be logged on the ${port} port`, () => refusalLines(server, port)[0], 5000);

const hostPort = (address: string): { host: string; port: number } => ({
  host: address.slice(0, address.lastIndexOf(':')),
  port: Number(address.slice(address.lastIndexOf(':') + 1)),
});

/** A kv.v1 call through the SDK over TLS with `certificate` (none: undefined), or in plaintext; resolves once it failed. */
async function callOverGrpc(address: string, certificate: CertificateFiles | undefined, plaintext = false): Promise<void> {
  const kv = new KvClient(address, {
    credentials: plaintext
      ? credentials.createInsecure()
      : credentials.createSsl(read(ca.cert), certificate && read(certificate.key), certificate && read(certificate.cert)),
    retry: { attempts: 1 },
    deadlineMs: 5000,
  });
  try {
    await expect(kv.get('app/x')).rejects.toThrow();
  } finally {
    kv.close();
  }
}

/** A GET of the console over HTTPS with `certificate` (none: undefined), or over plain HTTP; resolves once the connection failed. */
async function getOverHttp(address: string, certificate: CertificateFiles | undefined, plaintext = false): Promise<void> {
  if (plaintext) {
    await expect(fetch(`http://${address}/`)).rejects.toThrow();
    return;
  }
  const outcome = await new Promise<string>((resolve) => {
    const request = https.get({
      ...hostPort(address),
      path: '/',
      ca: read(ca.cert),
      cert: certificate && read(certificate.cert),
      key: certificate && read(certificate.key),
      servername: 'localhost',
      agent: false,
    });
    request.on('response', (response) => resolve(`answered ${response.statusCode}`));
    request.on('error', () => resolve('refused'));
  });
  expect(outcome).toBe('refused');
}

/** One TLS connection from `localAddress` with `certificate` (none: undefined); resolves once the server has closed it. */
function tlsConnection(address: string, localAddress: string, certificate?: CertificateFiles): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      socket: net.connect({ ...hostPort(address), localAddress }),
      ca: read(ca.cert),
      cert: certificate && read(certificate.cert),
      key: certificate && read(certificate.key),
      servername: 'localhost',
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
  });
}

/** A TCP connection closed at once, as a load balancer's health check does: no refusal. */
function tcpProbe(address: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(hostPort(address), () => socket.end());
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
  });
}

// Every row has all four: jest takes a test function with more parameters than its row for one with a done callback.
const CASES: Array<[string, string, () => CertificateFiles | undefined, boolean]> = [
  [
    'an expired client certificate',
    'client certificate expired',
    () => issue(dir, ca, 'billing', { expired: true, file: 'expired' }),
    false,
  ],
  [
    'a client certificate not valid yet',
    'client certificate not yet valid',
    () => issue(dir, ca, 'billing', { notYetValid: true, file: 'early' }),
    false,
  ],
  [
    'a client certificate from a CA not in --tls-client-ca',
    'client certificate from an untrusted CA',
    () => issue(dir, makeCa(dir, 'other-ca'), 'billing'),
    false,
  ],
  ['no client certificate', 'no client certificate', () => undefined, false],
  ['a plaintext client', 'not TLS (plaintext client?)', () => undefined, true],
];

test.each(CASES)('%s: one warn line on each port, with the port, the address and the reason', async (_, reason, certificate, plaintext) => {
  const files = certificate();
  const server = await startServer({ args: [...mutualTls(), '--http-listen', '127.0.0.1:0'] });
  try {
    await callOverGrpc(server.address, files, plaintext);
    await getOverHttp(server.httpAddress!, files, plaintext);
    for (const port of ['grpc', 'http'] as const) {
      const line = await firstLine(server, port);
      expect(line).toMatchObject({ level: 40, port, reason, refused: 1 });
      expect(line.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(line.msg).toBe(`${port === 'grpc' ? 'gRPC' : 'HTTP'} port: refused a TLS handshake from ${line.peer}: ${reason}`);
    }
    // Nothing of the certificate itself, nor of any key.
    expect(server.output()).not.toMatch(/BEGIN|PRIVATE/);
  } finally {
    expect(await server.stop()).toBe(0);
  }
});

test("a client that ends the handshake itself (it does not trust the server's certificate) is logged with its TLS alert", async () => {
  const server = await startServer({ args: [...mutualTls(), '--http-listen', '127.0.0.1:0'] });
  try {
    const client = issue(dir, ca, 'billing');
    // openssl s_client (curl and grpc-go too) sends a TLS alert when it does not trust the server; Node's clients just close.
    const distrusting = (address: string): Promise<void> =>
      new Promise((resolve) => {
        const args = ['s_client', '-connect', address, '-CAfile', makeCa(dir, 'unrelated-ca').cert, '-verify_return_error'];
        execFile('openssl', [...args, '-cert', client.cert, '-key', client.key], { timeout: 5000 }, () => resolve()).stdin?.end();
      });
    await distrusting(server.address);
    await distrusting(server.httpAddress!);
    for (const port of ['grpc', 'http'] as const) {
      expect(await firstLine(server, port)).toMatchObject({
        level: 40,
        reason: 'the client ended the handshake (TLS alert: tlsv1 alert unknown ca)',
      });
    }
  } finally {
    expect(await server.stop()).toBe(0);
  }
});

test('a burst of refusals is one line at once and one with the count after the interval, per port; TCP probes are no refusals', async () => {
  const foreign = issue(dir, makeCa(dir, 'burst-ca'), 'billing');
  const server = await startServer({ args: [...mutualTls(), '--http-listen', '127.0.0.1:0'] });
  // 40 refusals, one after the other, from 12 addresses in turn: 127.0.0.1, 127.0.0.2, ... 127.0.0.12, 127.0.0.1, ...
  const from = (i: number): string => `127.0.0.${1 + (i % 12)}`;
  try {
    const started = Date.now();
    for (const [port, address] of [
      ['grpc', server.address],
      ['http', server.httpAddress!],
    ] as const) {
      await Promise.all(Array.from({ length: 5 }, () => tcpProbe(address)));
      for (let i = 0; i < 40; i++) await tlsConnection(address, from(i), i % 2 === 0 ? foreign : undefined);
      // The first at once; the 39 others wait for the interval, whatever their number.
      expect(await firstLine(server, port)).toMatchObject({ refused: 1, reason: 'client certificate from an untrusted CA' });
      expect(refusalLines(server, port)[0].peer).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(refusalLines(server, port)).toHaveLength(1);
    }
    for (const port of ['grpc', 'http'] as const) {
      const summary = await pollUntil(
        `the ${port} port's refusals to be summed up`,
        () => refusalLines(server, port)[1],
        TLS_REFUSAL_LOG_EVERY_MS + 5000,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(TLS_REFUSAL_LOG_EVERY_MS - 1000);
      // The first 10 addresses are named (127.0.0.2 to .11); the 6 refusals from .12 and .1 are counted.
      const named = Array.from({ length: 10 }, (_, i) => from(i + 1));
      expect(summary).toMatchObject({
        level: 40,
        port,
        refused: 39,
        reasons: { 'client certificate from an untrusted CA': 19, 'no client certificate': 20 },
        addresses: named,
        refusedFromOtherAddresses: 6,
      });
      expect(summary.msg).toBe(
        `${port === 'grpc' ? 'gRPC' : 'HTTP'} port: refused 39 TLS handshakes in the last 10 s ` +
          `(no client certificate: 20, client certificate from an untrusted CA: 19) from ${named.join(', ')} (and 6 from other addresses)`,
      );
    }
    // The 5 probes per port were counted nowhere: 1 + 39 refusals, in two lines.
    for (const port of ['grpc', 'http'] as const) expect(refusalLines(server, port).map((line) => line.refused)).toEqual([1, 39]);
  } finally {
    expect(await server.stop()).toBe(0);
  }
});

test('under --workers, a worker logs its refusals to the server output as its other lines', async () => {
  const server = await startServer({ args: [...mutualTls(), '--http-listen', '127.0.0.1:0', '--workers', '2'] });
  try {
    await callOverGrpc(server.address, undefined);
    await getOverHttp(server.httpAddress!, issue(dir, ca, 'billing', { expired: true, file: 'expired-workers' }));
    expect(await firstLine(server, 'grpc')).toMatchObject({ level: 40, reason: 'no client certificate' });
    expect(await firstLine(server, 'http')).toMatchObject({ level: 40, reason: 'client certificate expired' });
  } finally {
    expect(await server.stop()).toBe(0);
  }
});
