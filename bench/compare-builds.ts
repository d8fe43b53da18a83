/**
 * Before/after for a change on kv's hot path: kv built from another checkout
 * ("before") and from this one, etcd and the grpc-js echo server, all up at
 * once and measured by h2load as `npm run bench` measures them (bench/measure.ts:
 * every run checked call for call), in rounds whose order rotates. Prints each
 * run, then medians over rounds and the ratios taken within each round.
 *
 *   npx tsx bench/compare-builds.ts --before DIR [--rounds N] [--duration S] [--workers N] [--connections N] [--before-env NAME=VALUE]...
 *
 * --workers N runs both builds as `kv-server --workers N` (their CPU is that
 * of all their processes); --connections N spreads each run's calls over N
 * HTTP/2 connections (default 1), as the workers part of `npm run bench` does.
 *
 * --before-env NAME=VALUE (repeatable) sets an environment variable for the
 * "before" server only: `--before . --before-env UV_USE_IO_URING=1` compares
 * this build with itself under a libuv setting.
 *
 * DIR is a checkout of the commit to compare with, after `npm ci` (which
 * builds it). Runs Set c=64, Set c=1 and Get c=64; at c=1 the mean latency is
 * the run's time over its calls (one call in flight).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { preload } from './preload';
import { clusterChildren } from '../test/support/server-process';
import { makeTempDir, REPO_ROOT, startEcho, startEtcd } from './servers';
import { fmt, type Labelled, measureRotatedRounds, range, roundRatio } from './rotated-rounds';
import { GET, SET, type Workload } from './workloads';

const KEYS = 1_000;
const RUNS: ReadonlyArray<{ workload: Workload; concurrency: number }> = [
  { workload: SET, concurrency: 64 },
  { workload: SET, concurrency: 1 },
  { workload: GET, concurrency: 64 },
];

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

/** kv-server from a checkout's dist/, as bench/servers.ts startKv runs this one's. */
async function startKvBuild(
  root: string,
  dataDir: string,
  label: string,
  workers: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Labelled> {
  const entry = path.join(root, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm ci\` in ${root}`);
  const args = [
    entry,
    '--listen',
    '127.0.0.1:0',
    '--data-dir',
    dataDir,
    '--fsync',
    'always',
    '--log-level',
    'warn',
    '--workers',
    String(workers),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const address = await new Promise<string>((resolve, reject) => {
    const watch = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /kv-server listening on (\S+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout?.on('data', watch);
    child.stderr?.on('data', watch);
    void exited.then(() => reject(new Error(`${label} exited before it was ready:\n${output}`)));
  });
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
  };
  const pid = child.pid ?? 0;
  return { name: 'kv', label, address, pid, startupMs: 0, processIds: () => [pid, ...clusterChildren(pid).map((c) => c.pid)], stop };
}

async function main(): Promise<void> {
  const before = flag('--before');
  if (before === undefined) throw new Error('--before DIR is required (a checkout of the commit to compare with, after npm ci)');
  const rounds = Number(flag('--rounds') ?? 5);
  const durationSec = Number(flag('--duration') ?? 5);
  const workers = Number(flag('--workers') ?? 1);
  const connections = Number(flag('--connections') ?? 1);
  const beforeEnv = { ...process.env };
  for (let i = process.argv.indexOf('--before-env'); i >= 0; i = process.argv.indexOf('--before-env', i + 1)) {
    const [name, ...value] = (process.argv[i + 1] ?? '').split('=');
    if (name === '' || value.length === 0) throw new Error('--before-env needs NAME=VALUE');
    beforeEnv[name] = value.join('=');
  }
  const runs = RUNS.map((run) => ({ ...run, connections: Math.min(connections, run.concurrency) }));
  const work = makeTempDir('builds');
  const dirs = [makeTempDir('builds-kv-before'), makeTempDir('builds-kv'), makeTempDir('builds-etcd')];
  const servers: Labelled[] = [];
  try {
    await preload('kv', dirs[0].dir, KEYS);
    await preload('kv', dirs[1].dir, KEYS);
    await preload('etcd', dirs[2].dir, KEYS);
    servers.push(
      await startKvBuild(path.resolve(before), dirs[0].dir, 'kv before', workers, beforeEnv),
      await startKvBuild(REPO_ROOT, dirs[1].dir, 'kv after', workers),
      { ...(await startEtcd({ dataDir: dirs[2].dir })), label: 'etcd' },
      { ...(await startEcho()), label: 'echo' },
    );
    const id = (server: Labelled, run: (typeof runs)[number]): string => `${run.workload.label} c=${run.concurrency} ${server.label}`;
    const { results, fsyncMs } = await measureRotatedRounds({ servers, runs, rounds, durationSec, workDir: work.dir, id });
    const lines = [
      `one fsync (100-byte write over zeros written ahead + fdatasync), median per round: ${fsyncMs.map((ms) => fmt(ms, 2)).join(', ')} ms`,
      '',
    ];
    lines.push('| run | server | calls/s | p50 ms | mean ms (c=1) | CPU µs/call |', '|---|---|---|---|---|---|');
    for (const run of runs) {
      for (const server of servers) {
        const all = results.get(id(server, run)) ?? [];
        const mean =
          run.concurrency === 1
            ? range(
                all.map((r) => 1000 / r.okPerSec),
                3,
              )
            : '';
        lines.push(
          `| ${run.workload.label} c=${run.concurrency} | ${server.label} | ${range(all.map((r) => r.okPerSec))} | ${range(
            all.map((r) => r.p50Ms),
            3,
          )} | ${mean} | ${range(all.map((r) => r.serverCpuUsPerCall))} |`,
        );
      }
    }
    lines.push('', 'calls/s ratios within each round, median (min–max):', '');
    for (const run of runs) {
      for (const kv of servers.slice(0, 2)) {
        for (const other of servers.slice(2)) {
          lines.push(
            `- ${run.workload.label} c=${run.concurrency}: ${kv.label} / ${other.label} ${roundRatio(results, id(kv, run), id(other, run))}`,
          );
        }
      }
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    for (const server of servers) await server.stop();
    work.remove();
    for (const dir of dirs) dir.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`compare-builds: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
