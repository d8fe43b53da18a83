/**
 * TLS, side by side in one run: kv in plaintext without auth, kv over TLS
 * with an auth file and a bearer token on every call, etcd in plaintext and
 * etcd over TLS (server certificate only, as kv). All four up at once, Set
 * and Get at c=64 with h2load (over TLS: ALPN h2), the order rotated each
 * round. The certificates are made with the openssl lines of
 * docs/security.md, the token with `kv-server token create`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { callsFor, measureThroughput, rotate, roundKey } from './measure';
import { log, RunCounter } from './progress';
import type { SetupRun, Settings } from './results';
import { makeTempDir, REPO_ROOT, startEtcd, startKv, type RunningServer } from './servers';
import { GET, SET } from './workloads';

export const TLS_SETUPS = ['kv', 'kv-tls', 'etcd', 'etcd-tls'] as const;
export type TlsSetup = (typeof TLS_SETUPS)[number];
export const TLS_WORKLOADS = [SET, GET] as const;
const KEY_SPACE = 1000;

/** A CA and a P-256 server certificate for 127.0.0.1, as docs/security.md makes them. */
function makeCertificates(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...curve, '-days', '1', '-subj', '/CN=kv-bench-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  openssl(
    'req',
    ...curve,
    '-subj',
    '/CN=kv-server',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-copy_extensions',
    'copyall',
    '-out',
    'server.crt',
  );
  return { caFile: path.join(dir, 'ca.crt'), certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') };
}

/** An auth file with one role that may do everything, and a token for it (`kv-server token create`). */
function makeToken(dir: string): { authFile: string; token: string } {
  const authFile = path.join(dir, 'auth.yaml');
  writeFileSync(authFile, 'roles:\n  bench:\n    - { prefix: "", permission: admin }\ntokens: []\n');
  const token = execFileSync(
    process.execPath,
    [path.join(REPO_ROOT, 'dist', 'main.js'), 'token', 'create', '--role', 'bench', '--name', 'bench', '--auth-file', authFile],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  ).trim();
  return { authFile, token };
}

export async function runTls(settings: Settings, workDir: string): Promise<SetupRun[]> {
  const secrets = makeTempDir('tls-files');
  const dirs = TLS_SETUPS.map((setup) => makeTempDir(`tls-${setup}`));
  const running = new Map<TlsSetup, RunningServer>();
  const concurrency = settings.tlsConcurrency;
  try {
    const tls = makeCertificates(secrets.dir);
    const { authFile, token } = makeToken(secrets.dir);
    running.set('kv', await startKv({ dataDir: dirs[0].dir }));
    running.set(
      'kv-tls',
      await startKv({
        dataDir: dirs[1].dir,
        args: ['--tls-cert', tls.certFile, '--tls-key', tls.keyFile, '--auth-file', authFile],
        caFile: tls.caFile,
        headers: { authorization: `Bearer ${token}` },
      }),
    );
    running.set('etcd', await startEtcd({ dataDir: dirs[2].dir }));
    running.set('etcd-tls', await startEtcd({ dataDir: dirs[3].dir, tls }));
    log(`tls: ${[...running].map(([setup, server]) => `${setup} ${server.address}`).join(', ')}`);

    const rates = new Map<string, number>();
    for (const workload of TLS_WORKLOADS) {
      for (const [setup, server] of running) {
        const warm = await measureThroughput({
          server,
          workload,
          concurrency,
          key: roundKey(KEY_SPACE, 0),
          durationSec: settings.warmupSec,
          workDir,
        });
        rates.set(`${setup}/${workload.id}`, warm.okPerSec);
      }
    }
    const runs: SetupRun[] = [];
    const counter = new RunCounter(settings.rounds * TLS_WORKLOADS.length * TLS_SETUPS.length, 'tls');
    for (let round = 0; round < settings.rounds; round++) {
      // Set first: the Get runs read the key the Set runs of the round wrote.
      for (const workload of TLS_WORKLOADS) {
        for (const setup of rotate(TLS_SETUPS, round)) {
          const rateKey = `${setup}/${workload.id}`;
          const throughput = await measureThroughput({
            server: running.get(setup) as RunningServer,
            workload,
            concurrency,
            key: roundKey(KEY_SPACE, round),
            calls: callsFor(rates.get(rateKey) ?? 0, settings.durationSec, concurrency),
            workDir,
          });
          rates.set(rateKey, throughput.okPerSec);
          runs.push({ setup, workload: workload.id, round, throughput });
          counter.step(`round ${round + 1} ${workload.label} ${setup}: ${Math.round(throughput.okPerSec)}/s`);
        }
      }
    }
    return runs;
  } finally {
    await Promise.all([...running.values()].map((server) => server.stop()));
    for (const dir of dirs) dir.remove();
    secrets.remove();
  }
}
