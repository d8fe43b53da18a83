/**
 * A real etcd cluster on loopback for tests and `npm run cluster`: N members
 * (default 3) on free ports, each in its own temp data directory, started
 * from Debian's /usr/bin/etcd (or ETCD_BIN). Members are killed by pid, one
 * at a time (kill -9 a member, restart it on the same directory) or all at
 * stop(). Readiness and the leader come from etcd's own HTTP endpoints
 * (/health, /v3/maintenance/status), so nothing here needs a client library.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port';

export interface EtcdMemberInfo {
  name: string;
  /** http://127.0.0.1:PORT, what clients dial. */
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

export interface EtcdCluster {
  /** Client URLs of every member, in member order. */
  readonly endpoints: string[];
  readonly members: readonly EtcdMemberInfo[];
  /** The pid of member i, or undefined while it is down. */
  pid(i: number): number | undefined;
  /** SIGKILL member i and wait until it is gone. */
  kill(i: number): Promise<void>;
  /** Start member i again on its data directory (after kill); resolves once it serves. */
  restart(i: number): Promise<void>;
  /** The index of the current leader, polling until the live members agree on one. */
  leader(timeoutMs?: number): Promise<number>;
  /** Everything member i wrote to stderr (etcd logs there). */
  output(i: number): string;
  /** SIGKILL every member (by pid) and remove the data directories. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEtcdClusterOptions {
  size?: number;
  /** etcd's --experimental-watch-progress-notify-interval: how often an idle watcher gets a progress response. */
  watchProgressMs?: number;
  /** Serve clients over TLS and require client certificates signed by `ca` (PEM file paths). Peers stay plaintext on loopback. */
  tls?: { cert: string; key: string; ca: string };
  /** Parent of the members' data directories (default: a new temp directory, removed at stop). */
  baseDir?: string;
  timeoutMs?: number;
}

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

export function etcdInstalled(): boolean {
  return fs.existsSync(ETCD_BIN);
}

/**
 * `describe` when etcd is installed, otherwise `describe.skip` with the
 * reason printed — unless KV_REQUIRE_ALL_CLIENTS=1 (CI), where a missing
 * etcd is a failure.
 */
export function describeWithEtcd(): jest.Describe {
  if (etcdInstalled()) return describe;
  if (process.env.KV_REQUIRE_ALL_CLIENTS === '1') {
    throw new Error(`etcd is required (KV_REQUIRE_ALL_CLIENTS=1) but ${ETCD_BIN} is missing: apt-get install etcd-server etcd-client`);
  }
  process.stdout.write(`skipping etcd tests: ${ETCD_BIN} is missing (apt-get install etcd-server etcd-client)\n`);
  return describe.skip;
}

export { freePort };

/**
 * Starts the cluster; when a member could not bind a port it was given
 * (freePort's ports are free when chosen, but a test running beside this
 * one may take one before etcd binds it), starts it again on new ports.
 */
export async function startEtcdCluster(options: StartEtcdClusterOptions = {}): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdClusterOnce(options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof Error) || !/address already in use|exited before it was healthy/.test(error.message))
        throw error;
      // A given base directory holds this attempt's half-made members: a new cluster starts from empty ones.
      if (options.baseDir !== undefined) {
        for (let i = 0; i < (options.size ?? 3); i++) fs.rmSync(path.join(options.baseDir, `m${i}`), { recursive: true, force: true });
      }
    }
  }
}

async function startEtcdClusterOnce(options: StartEtcdClusterOptions): Promise<EtcdCluster> {
  const size = options.size ?? 3;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ownBase = options.baseDir === undefined;
  const baseDir = options.baseDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kv-etcd-'));
  const token = `kv-test-${process.pid}-${Date.now()}`;
  const members: EtcdMemberInfo[] = [];
  const tls = options.tls;
  const scheme = tls === undefined ? 'http' : 'https';
  for (let i = 0; i < size; i++) {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    members.push({
      name: `m${i}`,
      clientUrl: `${scheme}://127.0.0.1:${clientPort}`,
      peerUrl: `http://127.0.0.1:${peerPort}`,
      dataDir: path.join(baseDir, `m${i}`),
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const children: Array<ChildProcess | undefined> = members.map(() => undefined);
  const outputs: string[] = members.map(() => '');

  const spawnMember = (i: number, state: 'new' | 'existing'): ChildProcess => {
    const m = members[i];
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=${token}`,
      `--experimental-watch-progress-notify-interval=${options.watchProgressMs ?? 5000}ms`,
      '--logger=zap',
      '--log-level=warn',
    ];
    if (tls !== undefined)
      args.push(`--cert-file=${tls.cert}`, `--key-file=${tls.key}`, `--trusted-ca-file=${tls.ca}`, '--client-cert-auth');
    const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      // Keep the tail only: a long fault run must not grow memory without bound.
      outputs[i] = (outputs[i] + chunk.toString()).slice(-64 * 1024);
    });
    children[i] = child;
    child.once('exit', () => {
      if (children[i] === child) children[i] = undefined;
    });
    return child;
  };

  const killMember = async (i: number): Promise<void> => {
    const child = children[i];
    if (child === undefined) return;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.kill('SIGKILL');
    await gone;
    children[i] = undefined;
  };

  let stopped = false;
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    pid: (i) => children[i]?.pid,
    kill: killMember,
    restart: async (i) => {
      if (children[i] !== undefined) throw new Error(`etcd member ${i} is still running`);
      spawnMember(i, 'existing');
      await waitHealthy(members[i].clientUrl, tls, () => outputs[i], timeoutMs);
    },
    leader: async (ms = timeoutMs) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = await findLeader(members, children, tls);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no etcd leader within ${ms} ms`);
        await delay(50);
      }
    },
    output: (i) => outputs[i],
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await Promise.all(members.map((_, i) => killMember(i)));
      if (ownBase) fs.rmSync(baseDir, { recursive: true, force: true });
    },
  };

  try {
    for (let i = 0; i < size; i++) spawnMember(i, 'new');
    await Promise.all(
      members.map((m, i) =>
        waitHealthy(
          m.clientUrl,
          tls,
          () => outputs[i],
          timeoutMs,
          () => children[i] === undefined,
        ),
      ),
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A JSON request to a member's HTTP gateway, over TLS with the client certificate when the cluster has one. */
function requestJson(url: string, tls: StartEtcdClusterOptions['tls'], body?: string): Promise<unknown> {
  if (tls === undefined) {
    return fetch(url, { method: body === undefined ? 'GET' : 'POST', body, signal: AbortSignal.timeout(1000) }).then((res) => res.json());
  }
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: body === undefined ? 'GET' : 'POST',
        ca: fs.readFileSync(tls.ca),
        cert: fs.readFileSync(tls.cert),
        key: fs.readFileSync(tls.key),
        timeout: 1000,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/** Polls GET /health until the member says it is healthy (it has a leader and serves). */
async function waitHealthy(
  clientUrl: string,
  tls: StartEtcdClusterOptions['tls'],
  output: () => string,
  timeoutMs: number,
  exited: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // A member that exited (it could not bind its port, say) will not become healthy: no use waiting the whole timeout.
    if (exited()) throw new Error(`etcd at ${clientUrl} exited before it was healthy:\n${output()}`);
    try {
      const body = (await requestJson(`${clientUrl}/health`, tls)) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`etcd at ${clientUrl} not healthy within ${timeoutMs} ms:\n${output()}`);
    await delay(50);
  }
}

interface StatusBody {
  header?: { member_id?: string };
  leader?: string;
}

/** The member index every live member names as leader, or undefined while they disagree or have none. */
async function findLeader(
  members: readonly EtcdMemberInfo[],
  children: ReadonlyArray<ChildProcess | undefined>,
  tls: StartEtcdClusterOptions['tls'],
): Promise<number | undefined> {
  const statuses = await Promise.all(
    members.map(async (m, i) => {
      if (children[i] === undefined) return undefined;
      try {
        return (await requestJson(`${m.clientUrl}/v3/maintenance/status`, tls, '{}')) as StatusBody;
      } catch {
        return undefined;
      }
    }),
  );
  const leaders = new Set(statuses.filter((s) => s !== undefined).map((s) => s.leader));
  if (leaders.size !== 1) return undefined;
  const [leaderId] = leaders;
  if (leaderId === undefined || leaderId === '0') return undefined;
  const index = statuses.findIndex((s) => s?.header?.member_id === leaderId);
  return index >= 0 ? index : undefined;
}
