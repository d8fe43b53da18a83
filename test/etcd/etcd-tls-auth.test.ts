/**
 * Reaching a secured etcd: TLS with client certificates (etcd's
 * --client-cert-auth), and etcd's own users with a role limited to kv's
 * prefix. Each on a one-member cluster; a frontend that cannot get in
 * exits 1 with one line instead of serving.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KvClient, Op } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { runKvctl } from '../support/kvctl-process';
import { runServerToExit, startServer } from '../support/server-process';
import { makeTestCertificates, type TestCertificates } from '../support/test-certificates';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();
const run = promisify(execFile);

/**
 * A certificate for etcd's client port signed by the test CA. etcd's own
 * HTTP gateway dials the gRPC port with it, so it must be good for both
 * server and client authentication.
 */
function etcdServerCertificate(certs: TestCertificates): { cert: string; key: string } {
  const file = (name: string): string => path.join(certs.dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(file('etcd.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    file('etcd.key'),
    '-out',
    file('etcd.csr'),
    '-subj',
    '/CN=etcd',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('etcd.csr'),
    '-CA',
    certs.caCert,
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('etcd.crt'),
    '-days',
    '2',
    '-extfile',
    file('etcd.ext'),
  );
  return { cert: file('etcd.crt'), key: file('etcd.key') };
}

/** Sets a key through a frontend started with `args`, reads it back, stops the frontend. */
async function roundTrip(args: string[]): Promise<unknown> {
  const server = await startServer({ args: ['--engine', 'etcd', ...args] });
  const kv = new KvClient(server.address);
  try {
    await kv.set('secure/x', { ok: true });
    return (await kv.get('secure/x'))?.value;
  } finally {
    kv.close();
    await server.stop();
  }
}

/** Runs a frontend with `args` until it exits (these fail at start). */
function frontendToExit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runServerToExit(['--listen', '127.0.0.1:0', '--engine', 'etcd', ...args], {});
}

describeEtcd('a secured etcd', () => {
  describe('TLS with client certificates', () => {
    let certs: TestCertificates;
    let cluster: EtcdCluster;
    beforeAll(async () => {
      certs = makeTestCertificates();
      cluster = await startEtcdCluster({ size: 1, tls: { ...etcdServerCertificate(certs), ca: certs.caCert } });
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    test('with --etcd-ca, --etcd-cert and --etcd-key the frontend serves, and warns that the client certificate expires soon', async () => {
      const tls = ['--etcd-ca', certs.caCert, '--etcd-cert', certs.clientCert, '--etcd-key', certs.clientKey];
      const server = await startServer({ args: ['--engine', 'etcd', '--etcd-endpoints', cluster.endpoints[0], ...tls] });
      const kv = new KvClient(server.address);
      try {
        await kv.set('secure/x', { ok: true });
        expect((await kv.get('secure/x'))?.value).toEqual({ ok: true });
        // The test certificates are good for two days.
        expect(server.output()).toMatch(
          /"msg":"the etcd client certificate \(--etcd-cert\) expires in 1 day: renew it and restart each frontend/,
        );
        // SIGHUP does not reload them, and says so.
        server.child.kill('SIGHUP');
        await pollUntil('SIGHUP to be answered', () =>
          server
            .output()
            .includes('nothing to reload (no TLS files, no auth file); the --etcd-* files are read only at start: restart to use new ones')
            ? true
            : undefined,
        );
      } finally {
        kv.close();
        await server.stop();
      }
    });

    test('without a client certificate etcd refuses, and the frontend exits 1 with one line', async () => {
      const { code, stderr } = await frontendToExit([
        '--etcd-endpoints',
        cluster.endpoints[0],
        '--etcd-ca',
        certs.caCert,
        '--etcd-timeout-ms',
        '2000',
      ]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(`kv-server: cannot open the store in etcd at ${cluster.endpoints[0]}: `);
      // Which certificate to look at, not "a majority of members is up", nor OpenSSL's source file.
      expect(stderr).toContain("etcd refused this server's TLS client certificate in the handshake");
      expect(stderr).not.toMatch(/\.c:\d+|majority/);
    });

    test("a CA that did not sign etcd's certificate is named as the trouble, in one line", async () => {
      const other = makeTestCertificates();
      const tls = ['--etcd-ca', other.caCert, '--etcd-cert', certs.clientCert, '--etcd-key', certs.clientKey];
      const { code, stderr } = await frontendToExit(['--etcd-endpoints', cluster.endpoints[0], ...tls, '--etcd-timeout-ms', '2000']);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain("this server does not accept etcd's certificate (");
      expect(stderr).toContain('check that --etcd-ca holds the CA that signed');
    });

    test('a client key that is not the key of --etcd-cert is named, in one line (not a stack trace)', async () => {
      const tls = ['--etcd-ca', certs.caCert, '--etcd-cert', certs.clientCert, '--etcd-key', certs.serverKey];
      const { code, stderr } = await frontendToExit(['--etcd-endpoints', cluster.endpoints[0], ...tls]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(
        `${certs.serverKey} (--etcd-key) is not the private key of the certificate in ${certs.clientCert} (--etcd-cert)`,
      );
    });
  });

  test('a client certificate etcd stops accepting while the frontend runs: every failed call names it, also a call that found every circuit open', async () => {
    const certs = makeTestCertificates();
    const other = makeTestCertificates();
    // etcd trusts both CAs at first; the frontend's client certificate is the second's.
    const trusted = path.join(certs.dir, 'trusted.crt');
    writeFileSync(trusted, Buffer.concat([readFileSync(certs.caCert), readFileSync(other.caCert)]));
    const cluster = await startEtcdCluster({ size: 1, tls: { ...etcdServerCertificate(certs), ca: trusted } });
    const tls = ['--etcd-ca', certs.caCert, '--etcd-cert', other.clientCert, '--etcd-key', other.clientKey];
    const server = await startServer({
      args: ['--engine', 'etcd', '--etcd-endpoints', cluster.endpoints[0], ...tls, '--etcd-timeout-ms', '1000'],
    });
    const kv = new KvClient(server.address);
    try {
      await kv.set('secure/renewed', 1);
      // etcd restarts trusting the first CA only, as when the frontend's certificate expired or was revoked.
      writeFileSync(trusted, readFileSync(certs.caCert));
      await cluster.kill(0);
      await cluster.restart(0);
      const messages: string[] = [];
      // A call that meets the member's circuit open (after three refused handshakes) reaches no member at all.
      await pollUntil('a read that found every circuit open', async () => {
        const failure = await kv.get('secure/renewed').then(
          () => undefined,
          (error: unknown) => error as Error,
        );
        if (failure !== undefined) messages.push(failure.message);
        return messages.some((m) => m.includes('no etcd endpoint answers right now')) ? true : undefined;
      });
      for (const message of messages) expect(message).toContain("etcd refused this server's TLS client certificate in the handshake");
    } finally {
      kv.close();
      await server.stop();
      await cluster.stop();
    }
  });

  describe("etcd's users and roles", () => {
    let cluster: EtcdCluster;
    let passwordFile: string;
    /** etcdctl as root, once authentication is on. */
    const asRoot = (...args: string[]): Promise<unknown> =>
      run('/usr/bin/etcdctl', [`--endpoints=${cluster.endpoints[0]}`, '--user', 'root:root-secret', ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    beforeAll(async () => {
      cluster = await startEtcdCluster({ size: 1 });
      const etcdctl = (...args: string[]): Promise<unknown> =>
        run('/usr/bin/etcdctl', [`--endpoints=${cluster.endpoints[0]}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
      // As docs/scaling.md says: a kv role with read/write on the kv/ prefix only.
      await etcdctl('user', 'add', 'root:root-secret');
      await etcdctl('role', 'add', 'root');
      await etcdctl('user', 'grant-role', 'root', 'root');
      await etcdctl('role', 'add', 'kv');
      await etcdctl('role', 'grant-permission', 'kv', 'readwrite', '--prefix=true', 'kv/');
      await etcdctl('user', 'add', 'kv:kv-secret');
      await etcdctl('user', 'grant-role', 'kv', 'kv');
      // A user that may only read kv/ (until a test grants it more).
      await etcdctl('role', 'add', 'kv-reader');
      await etcdctl('role', 'grant-permission', 'kv-reader', 'read', '--prefix=true', 'kv/');
      await etcdctl('user', 'add', 'reader:kv-secret');
      await etcdctl('user', 'grant-role', 'reader', 'kv-reader');
      await etcdctl('auth', 'enable');
      passwordFile = path.join(makeTempDir(), 'etcd-password');
      writeFileSync(passwordFile, 'kv-secret\n');
    });
    afterAll(async () => {
      await cluster?.stop();
    });

    test('with --etcd-username and --etcd-password-file the frontend serves its prefix', async () => {
      expect(
        await roundTrip(['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'kv', '--etcd-password-file', passwordFile]),
      ).toEqual({
        ok: true,
      });
    });

    test('after etcd restarts (its auth tokens gone) the frontend serves again by itself, however its calls meet the new token', async () => {
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'kv', '--etcd-password-file', passwordFile];
      const server = await startServer({ args: ['--engine', 'etcd', '--etcd-timeout-ms', '1000', ...args] });
      const kv = new KvClient(server.address, { deadlineMs: 3000, retry: { attempts: 1 } });
      try {
        await kv.set('secure/ttl', 1, { ttlMs: 60_000 });
        // A key that expires: the frontend revokes its lease, one of the calls that meet etcd after the restart.
        await kv.set('secure/short', 1, { ttlMs: 2000 });
        await pollUntil('the short key to expire', async () => ((await kv.get('secure/short')) === undefined ? true : undefined));
        await cluster.kill(0);
        await pollUntil('the frontend to say etcd is unavailable', async () =>
          (await kv.health().catch(() => undefined)) === 'NOT_SERVING' ? true : undefined,
        );
        await cluster.restart(0);
        // The first call after the circuit half-opens meets etcd's "invalid auth token" and authenticates again: it
        // used to wait on its own circuit's trial, and every call after it on that, for good.
        const value = await pollUntil(
          'a read through the frontend to succeed',
          () =>
            kv.get('secure/ttl').then(
              (entry) => entry?.value,
              () => undefined,
            ),
          40_000,
        );
        expect(value).toBe(1);
      } finally {
        kv.close();
        await server.stop();
      }
    }, 90_000);

    test("a write etcd refuses the server's role is FAILED_PRECONDITION, BACKEND_REFUSED, not retried; health is NOT_SERVING and the log says why until the role allows it", async () => {
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'reader', '--etcd-password-file', passwordFile];
      const server = await startServer({ args: ['--engine', 'etcd', ...args] });
      const kv = new KvClient(server.address, { deadlineMs: 5000 });
      try {
        // Known from the start (etcd is asked as the store opens), not only at the first write.
        expect(await kv.health()).toBe('NOT_SERVING');
        expect(server.output()).toMatch(/"BACKEND_REFUSED".*health is NOT_SERVING/);
        expect(await kv.get('secure/none')).toBeUndefined();
        const refusal = await kv.set('secure/ro', 1).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refusal).toMatchObject({ code: 9 /* FAILED_PRECONDITION */, reason: 'BACKEND_REFUSED' });
        expect((refusal as Error).message).toMatch(
          /etcd refused this server's write \(.*permission denied\); nothing was applied: check --etcd-username/,
        );
        expect(await kv.health()).toBe('NOT_SERVING');
        await pollUntil('the log to say why', () => (/"BACKEND_REFUSED".*health is NOT_SERVING/.test(server.output()) ? true : undefined));
        // Reads still work, and do not clear it, nor does a transaction that only reads: only a write can say the role
        // allows writes.
        expect(await kv.get('secure/none')).toBeUndefined();
        await kv.txn().then(Op.get('secure/none')).commit();
        expect(await kv.health()).toBe('NOT_SERVING');
        // Nor does the frontend's own probe while etcd still refuses: past a few of its rounds (one a second), the same.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        expect(await kv.health()).toBe('NOT_SERVING');
        // With no call to say so, the frontend's own probe (a write etcd checks but never applies) sees the grant.
        await asRoot('role', 'grant-permission', 'kv-reader', 'readwrite', '--prefix=true', 'kv/');
        await pollUntil('health to be SERVING again', async () => ((await kv.health()) === 'SERVING' ? true : undefined), 15_000);
        await kv.set('secure/ro', 2);
        expect((await kv.get('secure/ro'))?.value).toBe(2);
        // The probe wrote nothing: the key it names, the prefix itself, is not there.
        const { stdout } = (await asRoot('get', 'kv/')) as { stdout: string };
        expect(stdout).toBe('');
      } finally {
        kv.close();
        await server.stop();
        await asRoot('role', 'revoke-permission', 'kv-reader', '--prefix=true', 'kv/').catch(() => undefined);
        await asRoot('role', 'grant-permission', 'kv-reader', 'read', '--prefix=true', 'kv/').catch(() => undefined);
      }
    }, 60_000);

    test('with several servers, one whose etcd role refuses is passed over: the SDK and kvctl go on to the next (nothing was applied)', async () => {
      const as = (user: string): string[] => [
        '--engine',
        'etcd',
        '--etcd-endpoints',
        cluster.endpoints[0],
        '--etcd-username',
        user,
        '--etcd-password-file',
        passwordFile,
      ];
      const refused = await startServer({ args: as('reader') });
      const good = await startServer({ args: as('kv') });
      const kv = new KvClient([refused.address, good.address], { deadlineMs: 5000 });
      try {
        // At once: calls share the turn that picks their server, so a retry must pass over the one that refused by itself.
        await Promise.all(Array.from({ length: 20 }, (_, i) => kv.set(`secure/both/${i}`, i)));
        expect((await Promise.all(Array.from({ length: 20 }, (_, i) => kv.get(`secure/both/${i}`)))).map((e) => e?.value)).toEqual(
          Array.from({ length: 20 }, (_, i) => i),
        );
        const cli = await runKvctl(['set', 'secure/both/cli', '1', '--endpoint', `${refused.address},${good.address}`]);
        expect(cli.code).toBe(0);
      } finally {
        kv.close();
        await Promise.all([refused.stop(), good.stop()]);
      }
    });

    test('a prefix the role does not cover is refused at start, in one line, without the password', async () => {
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'kv', '--etcd-password-file', passwordFile];
      const { code, stderr } = await frontendToExit([...args, '--etcd-prefix', 'other/']);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain("etcd refused this server's read");
      expect(stderr).not.toContain('kv-secret');
    });

    test('a password file that cannot be read is named with its flag, in one line', async () => {
      const missing = path.join(makeTempDir(), 'no-such-password');
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'kv', '--etcd-password-file', missing];
      const { code, stderr } = await frontendToExit([...args]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(`cannot read ${missing} (--etcd-password-file): ENOENT`);
    });

    test('a wrong password is refused at start, in one line, without the password', async () => {
      const wrong = path.join(makeTempDir(), 'wrong');
      writeFileSync(wrong, 'not-it');
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-username', 'kv', '--etcd-password-file', wrong];
      const { code, stderr } = await frontendToExit([...args]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain('check --etcd-username and the password in --etcd-password-file');
      expect(stderr).not.toContain('not-it');
    });

    test('no user given to an etcd with authentication on says which flags to give, in one line', async () => {
      const args = ['--etcd-endpoints', cluster.endpoints[0], '--etcd-timeout-ms', '2000'];
      const { code, stderr } = await frontendToExit([...args]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain('its authentication is on; give --etcd-username and --etcd-password-file');
    });
  });
});
