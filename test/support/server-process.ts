/**
 * The one way to start kv-server as a child process, for the tests and the
 * benchmarks alike: the compiled dist/main.js, as users run it, with the same
 * flags, readiness rule and shutdown. Jest's global setup rebuilds dist/ first
 * if the sources changed since the last build (test/support/global-setup.js).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './temp-dirs';

/** The repository root, so tests can run from any working directory. */
export const REPO_ROOT = path.resolve(__dirname, '../..');

export interface RunningServer {
  /** host:port the server bound, e.g. "127.0.0.1:41233". */
  address: string;
  /** host:port of the HTTP port (Connect, gRPC-Web, console), when started with --http-listen. */
  httpAddress?: string;
  /** host:port of the metrics port, when started with --metrics-listen. */
  metricsAddress?: string;
  dataDir: string;
  child: ChildProcess;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** Sends a signal (default SIGTERM) and resolves with the exit code once it exits. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /**
   * Resolves with the exit code once the process exits, sending nothing: for a test that has signalled it already (a
   * second SIGTERM from stop() would mean "now").
   */
  exited(): Promise<number | null>;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<void>;
}

/** How to launch the server process, apart from kv-server's own flags. */
export interface LaunchOptions {
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
}

export interface StartServerOptions extends LaunchOptions {
  dataDir?: string;
  /** Extra flags for kv-server. */
  args?: string[];
  /** The gRPC address to listen on (default 127.0.0.1:0). */
  listen?: string;
  env?: Record<string, string>;
  /** How long to wait for the startup line (default 30 s). */
  timeoutMs?: number;
}

/** The line kv-server prints once its metrics port listens (before the store opens). */
export const METRICS_LINE = /metrics on http:\/\/([^/\s]+)\/metrics/;

/** Runs the real kv-server in a child process on 127.0.0.1:0 and resolves once it says it is listening. */
export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
  const dataDir = options.dataDir ?? makeTempDir();
  const listen = options.listen ?? '127.0.0.1:0';
  const child = spawnServer(['--listen', listen, '--data-dir', dataDir, ...(options.args ?? [])], options.env, options);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // 'exit' may come before the last of the output is read: a test that reads the log after a stop waits for 'close'
  // too (bounded: a child of a --workers server that outlived its supervisor would hold the pipes open).
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const outputRead = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
  };

  const exitedWithOutput = async (): Promise<number | null> => {
    const code = await exited;
    await outputRead();
    return code;
  };

  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kv-server did not start within ${options.timeoutMs ?? 30_000} ms:\n${output}`));
    }, options.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /kv-server listening on (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kv-server exited with code ${code} before it was ready:\n${output}`));
    });
  });

  // The HTTP line comes before the gRPC one that says the server is ready.
  const httpAddress = /kv-server HTTP listening on (\S+)/.exec(output)?.[1];
  const metricsAddress = METRICS_LINE.exec(output)?.[1];
  return {
    address,
    httpAddress,
    metricsAddress,
    dataDir,
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exitedWithOutput();
    },
    exited: exitedWithOutput,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Spawns kv-server with the given flags and no readiness wait (for tests of start-up failures). */
export function spawnServer(args: string[], env: Record<string, string> = {}, launch: LaunchOptions = {}): ChildProcess {
  return spawn(process.execPath, [...(launch.nodeArgs ?? []), path.join(REPO_ROOT, 'dist/main.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, KV_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs kv-server to completion and returns its exit code and output. */
export function runServerToExit(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnServer(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kv-server ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a child of a `--workers N` server does (the supervisor tells each in its environment). */
export type ClusterRole = 'owner' | 'worker';

/** The store owner and workers of a `--workers N` server whose supervisor is `pid`, read from /proc. */
export function clusterChildren(pid: number): Array<{ pid: number; role: ClusterRole }> {
  const found: Array<{ pid: number; role: ClusterRole }> = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const role = /KV_PROCESS_ROLE=(owner|worker)/.exec(fs.readFileSync(`/proc/${name}/environ`, 'latin1'))?.[1];
      if (role === 'owner' || role === 'worker') found.push({ pid: Number(name), role });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/**
 * SIGKILLs a `--workers N` server's supervisor and then its store owner and
 * workers, found before the supervisor dies (afterwards their parent is
 * another process): a stopped worker (SIGSTOP) would not notice its
 * supervisor gone.
 */
export async function killCluster(server: RunningServer): Promise<void> {
  const children = server.child.pid === undefined ? [] : clusterChildren(server.child.pid);
  await server.kill();
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone with its supervisor.
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Node arguments that make a server say on stderr ("event loop drained")
 * that its process ended because nothing held it any more, not by a
 * process.exit() (main.ts's fallback): startServer({ nodeArgs: ['--import', REPORT_DRAINED_LOOP] }).
 */
export const REPORT_DRAINED_LOOP = `data:text/javascript,process.on('beforeExit', () => process.stderr.write('event loop drained\\n'))`;
