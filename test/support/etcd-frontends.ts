/**
 * kv-server frontends over a test etcd cluster: each a real child process
 * (test/support/server-process.ts) with --engine etcd, on a port of its own
 * that survives a restart, so clients given its address find it again.
 */
import { freePort, type EtcdCluster } from './etcd-cluster';
import { startServer, type RunningServer } from './server-process';

export interface Frontend {
  readonly address: string;
  server: RunningServer;
  /** Starts it again on the same address (after kill or stop). */
  restart(): Promise<void>;
}

export async function startFrontend(cluster: EtcdCluster, prefix: string, args: string[] = []): Promise<Frontend> {
  const address = `127.0.0.1:${await freePort()}`;
  const launch = (): Promise<RunningServer> =>
    startServer({
      args: ['--listen', address, '--engine', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix, ...args],
    });
  const frontend: Frontend = {
    address,
    server: await launch(),
    restart: async () => {
      frontend.server = await launch();
    },
  };
  return frontend;
}
