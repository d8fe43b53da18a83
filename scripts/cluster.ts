/**
 * npm run cluster: a whole kv deployment on this machine, for trying the
 * etcd engine — a 3-member etcd cluster on loopback (installed from
 * Debian's packages if missing) and N kv-server frontends over it. Prints
 * every endpoint, then runs until Ctrl-C / SIGTERM, when it stops the
 * frontends (SIGTERM, so they finish their calls), kills each etcd member
 * by its pid and removes the cluster's temp directories.
 *
 *   npm run cluster -- --frontends 3 --first-port 50061
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { etcdInstalled, startEtcdCluster, type EtcdCluster } from '../test/support/etcd-cluster';
import { startServer, type RunningServer } from '../test/support/server-process';

const USAGE =
  'usage: npm run cluster -- [--frontends N (default 2)] [--first-port PORT (default 50061)] [--etcd-prefix PREFIX (default kv/)]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        frontends: { type: 'string', default: '2' },
        'first-port': { type: 'string', default: '50061' },
        'etcd-prefix': { type: 'string', default: 'kv/' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`cluster: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const count = Number(values.frontends);
  const firstPort = Number(values['first-port']);
  if (!Number.isInteger(count) || count < 1 || count > 16 || !Number.isInteger(firstPort) || firstPort < 1 || firstPort + count > 65536) {
    process.stderr.write(`cluster: --frontends must be 1..16 and --first-port a port\n${USAGE}\n`);
    return 2;
  }
  if (!etcdInstalled()) execFileSync('bash', [path.join(__dirname, 'install-etcd.sh')], { stdio: 'inherit' });

  // Listened for before anything starts: a signal that comes as the ready line is read (or before) still stops everything.
  // And for good: Ctrl-C signals the whole process group, and a second SIGINT or SIGTERM (a launcher passing the same
  // one on) must not end the script with no listener left, half way through its stop.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.on('SIGINT', resolve);
    process.on('SIGTERM', resolve);
  });
  let cluster: EtcdCluster | undefined;
  const frontends: RunningServer[] = [];
  const stop = async (): Promise<void> => {
    // Frontends first (they drain their calls), then etcd, each by its pid.
    await Promise.all(frontends.map((f) => f.stop('SIGTERM')));
    // The etcd engine keeps nothing in its data directory, but startServer made one for each frontend.
    for (const f of frontends) rmSync(f.dataDir, { recursive: true, force: true });
    await cluster?.stop();
  };
  try {
    const started = Date.now();
    cluster = await startEtcdCluster({ watchProgressMs: 5000 });
    const endpoints = cluster.endpoints.join(',');
    for (let i = 0; i < count; i++) {
      const args = ['--engine', 'etcd', '--etcd-endpoints', endpoints, '--etcd-prefix', values['etcd-prefix']];
      frontends.push(await startServer({ listen: `127.0.0.1:${firstPort + i}`, args }));
    }
    const lines = [
      `etcd cluster (3 members, pids ${cluster.members.map((_, i) => cluster?.pid(i)).join(' ')}):`,
      `  --etcd-endpoints ${endpoints}`,
      `kv frontends (pids ${frontends.map((f) => f.child.pid).join(' ')}):`,
      ...frontends.map((f) => `  ${f.address}`),
      `clients: KV_ENDPOINTS=${frontends.map((f) => f.address).join(',')} npx kvctl ls`,
      `ready in ${Date.now() - started} ms; Ctrl-C stops everything`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (error) {
    process.stderr.write(`cluster: ${(error as Error).message}\n`);
    await stop();
    return 1;
  }
  const signal = await signalled;
  process.stdout.write(`${signal}: stopping the frontends, then etcd\n`);
  await stop();
  process.stdout.write('stopped\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
