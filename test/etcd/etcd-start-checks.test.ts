/**
 * What a frontend on the etcd engine can tell is wrong as it starts, said in
 * one line naming the flag (exit 1), not a stack trace or, seconds later, a
 * TLS handshake's OpenSSL text: --etcd-endpoints that names a gRPC server
 * that is not etcd (here a kv frontend's own port, an easy slip for 2379),
 * an empty password file, a CA file that holds no certificate, a client
 * certificate that has expired.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { issue, makeCa } from '../support/certificates';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { runServerToExit, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let other: RunningServer;
beforeAll(async () => {
  other = await startServer();
});
afterAll(async () => {
  await other?.stop();
});

test('a gRPC server that is not etcd is named as such at start, in one line', async () => {
  const endpoint = `http://${other.address}`;
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint]);
  expect(code).toBe(1);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toContain(
    `kv-server: cannot open the store in etcd at ${endpoint}: an --etcd-endpoints address answered, but not as an etcd v3 member`,
  );
  expect(stderr).toContain('check --etcd-endpoints');
});

/** What etcd 3.4 answers GET /version with. */
const ETCD_VERSION = '{"etcdserver":"3.4.30","etcdcluster":"3.4.0"}';
const ETCD_VERSION_ANSWER = `HTTP/1.1 200 OK\r\nContent-Length: ${ETCD_VERSION.length}\r\nConnection: close\r\n\r\n${ETCD_VERSION}`;

test.each([
  ['etcd (its /version answer)', ETCD_VERSION_ANSWER, true],
  [
    'not etcd: a proxy in front of an etcd that is down',
    'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    false,
  ],
])(
  'an https:// endpoint that resets the TLS handshake (as a plaintext etcd does on a busy machine), answering plain HTTP as %s: the scheme is named only for etcd',
  async (_name, answer, named) => {
    // A plaintext etcd closes a connection that starts with a TLS ClientHello; Node reports that as a handshake cut short
    // or, when the close comes as a reset, as ECONNRESET, which says nothing of TLS: this one always resets.
    const server = net.createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        if (chunk[0] === 0x16) socket.resetAndDestroy();
        else socket.end(answer);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint, '--etcd-timeout-ms', '2000'];
      const { code, stderr } = await runServerToExit(args);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      if (named) {
        expect(stderr).toContain('an etcd that serves plaintext is named http://, not https://');
        expect(stderr).not.toContain('majority');
      } else {
        expect(stderr).not.toContain('named http://');
        expect(stderr).toContain('majority');
      }
    } finally {
      server.close();
    }
  },
);

test('an http:// endpoint where a TLS server answers (an etcd that serves TLS): the scheme is named', async () => {
  const dir = makeTempDir();
  const ca = makeCa(dir, 'etcd-ca');
  const cert = issue(dir, ca, 'etcd', { san: ['IP:127.0.0.1'] });
  // What a TLS etcd does with a connection that does not start with a handshake: closes it.
  const server = tls.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['h2'] }, (socket) =>
    socket.end(),
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint, '--etcd-timeout-ms', '2000'];
    const { code, stderr } = await runServerToExit(args);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('an etcd that serves TLS is named https://, not http://');
    expect(stderr).not.toContain('majority');
  } finally {
    server.close();
  }
});

test('under --workers the start fails at once, the line said once, not after starting workers again and again', async () => {
  const endpoint = `http://${other.address}`;
  const args = ['--workers', '2', '--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint];
  const { code, stderr } = await runServerToExit(args);
  expect(code).toBe(1);
  expect(stderr.match(/not as an etcd v3 member/g)).toHaveLength(1);
  expect(stderr).not.toContain('starting another');
  expect(stderr).not.toContain('keeps failing');
});

test('an empty --etcd-password-file is refused at start, naming it', async () => {
  const empty = path.join(makeTempDir(), 'empty-password');
  writeFileSync(empty, '\n');
  const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', `http://${other.address}`];
  const { code, stderr } = await runServerToExit([...args, '--etcd-username', 'kv', '--etcd-password-file', empty]);
  expect(code).toBe(1);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toContain(`${empty} (--etcd-password-file) holds no password`);
});

describe('TLS files for etcd, checked before connecting', () => {
  const dir = makeTempDir('etcd-tls-files-');
  const ca = makeCa(dir, 'ca');
  // Nothing listens there: these must fail before any connection is tried.
  const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', 'https://127.0.0.1:1'];

  test('a CA file that holds no certificate', async () => {
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'garbage\n');
    const { code, stderr } = await runServerToExit([...args, '--etcd-ca', garbage]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`${garbage} holds no PEM certificate (--etcd-ca)`);
  });

  test('a key file that holds no key, named', async () => {
    const cert = issue(dir, ca, 'kv', { file: 'good-client' });
    const garbage = path.join(dir, 'garbage.key');
    writeFileSync(garbage, 'garbage\n');
    const { code, stderr } = await runServerToExit([...args, '--etcd-ca', ca.cert, '--etcd-cert', cert.cert, '--etcd-key', garbage]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`${garbage} (--etcd-key) is not a PEM private key`);
  });

  test('a client certificate that has expired', async () => {
    const expired = issue(dir, ca, 'kv', { expired: true, file: 'expired-client' });
    const { code, stderr } = await runServerToExit([...args, '--etcd-ca', ca.cert, '--etcd-cert', expired.cert, '--etcd-key', expired.key]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(new RegExp(`the certificate in ${expired.cert} \\(--etcd-cert\\) expired on \\w`));
  });
});

describeWithEtcd()('an etcd whose authentication is off', () => {
  let cluster: EtcdCluster;
  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  test('--etcd-username given: one line saying so, exit 1, also under --workers (which used to wait for good)', async () => {
    const password = path.join(makeTempDir(), 'password');
    writeFileSync(password, 'secret\n');
    const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', cluster.endpoints[0]];
    for (const workers of [[], ['--workers', '2']]) {
      const { code, stderr } = await runServerToExit([...workers, ...args, '--etcd-username', 'kv', '--etcd-password-file', password]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain("etcd's authentication is off; leave out --etcd-username and --etcd-password-file");
    }
  }, 30_000);

  test('an https:// endpoint where etcd serves plaintext: one line naming the scheme, not quorum advice, exit 1', async () => {
    const endpoint = cluster.endpoints[0].replace(/^http:/, 'https:');
    const args = ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint, '--etcd-timeout-ms', '2000'];
    const { code, stderr } = await runServerToExit(args);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('an etcd that serves plaintext is named http://, not https://');
    expect(stderr).not.toContain('majority');
  });
});
