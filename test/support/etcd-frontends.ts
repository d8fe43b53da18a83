/**
 * kv-server frontends over a test etcd cluster: each a real child process
 * (test/support/server-process.ts) with --engine etcd, on a port of its own
 * that survives a restart, so clients given its address find it again.
 */
import { freePort, type EtcdCluster } from './etcd-cluster';
import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from './server-process';
import { pollUntil } from './temp-dirs';

export interface Frontend {
  readonly address: string;
  server: RunningServer;
  /** Starts it again on the same address (after kill or stop). */
  restart(): Promise<void>;
}

export async function startFrontend(cluster: EtcdCluster, prefix: string, args: string[] = []): Promise<Frontend> {
  const address = `127.0.0.1:${await freePort()}`;
  const launch = async (): Promise<RunningServer> => {
    const server = await startServer({
      args: ['--listen', address, '--engine', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix, ...args],
    });
    // Listening is not yet answering under load: wait until a new client's health check is served.
    const probe = new KvClient(address, { deadlineMs: 2000 });
    try {
      await pollUntil('the frontend to answer health checks', () => probe.health().catch(() => undefined), 30_000);
    } finally {
      probe.close();
    }
    return server;
  };
  const frontend: Frontend = {
    address,
    server: await launch(),
    restart: async () => {
      frontend.server = await launch();
    },
  };
  return frontend;
}
