/**
 * Where kv-server spends its CPU under load: runs dist/main.js with
 * `node --cpu-prof`, drives it with h2load (Set, then Get, c=64 by default),
 * and prints the functions with the most self time and a breakdown by layer
 * (kv code, grpc-js, protobuf, Node internals, GC, idle).
 *
 *   npx tsx bench/profile-kv.ts [--duration S] [--concurrency C] [--connections N] [--workers N]
 *
 * With --workers N (N > 1) every process profiles itself: one summary each
 * for the supervisor, the store owner and the workers. --connections N
 * spreads the calls over N HTTP/2 connections (default 1: under --workers,
 * one connection is served by one worker).
 *
 * The .cpuprofile files stay in bench/results/ (gitignored) for Chrome
 * DevTools or speedscope.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { measureThroughput, roundKey } from './measure';
import { preload } from './preload';
import { log } from './progress';
import { clusterChildren } from '../test/support/server-process';
import { makeTempDir, REPO_ROOT, startKv } from './servers';
import { WORKLOADS, type Workload } from './workloads';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const KEY_SPACE = 10_000;

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} needs a positive number`);
  return value;
}

/** A layer name for a frame, so the profile reads as "grpc-js 40%, kv 10%, ...". */
function layerOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'native / V8 (program)';
  if (url.includes('/node_modules/@grpc/')) return 'grpc-js';
  if (url.includes('/node_modules/protobufjs/') || url.includes('/node_modules/@bufbuild/') || url.includes('/dist/gen/'))
    return 'protobuf (generated code + runtime)';
  if (url.includes('/node_modules/')) return `dependency: ${url.split('/node_modules/').pop()?.split('/')[0] ?? '?'}`;
  if (url.includes('/dist/')) return 'kv (dist/)';
  if (url.startsWith('node:')) return 'Node internals (http2, streams, timers, fs)';
  return url === '' ? 'native / builtin' : 'other';
}

function shortUrl(url: string): string {
  const marker = url.lastIndexOf('/node_modules/');
  if (marker >= 0) return url.slice(marker + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? url.slice(dist + 1) : url;
}

export function summarizeProfile(profile: CpuProfile, top = 30): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<string, number>();
  const layerMs = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    totalMs += ms;
    const name = `${frame.functionName || '(anonymous)'}  ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    selfMs.set(name, (selfMs.get(name) ?? 0) + ms);
    const layer = layerOf(frame);
    layerMs.set(layer, (layerMs.get(layer) ?? 0) + ms);
  });
  // Shares of busy time (all but idle) say what a call costs; idle says how far from saturated the thread was.
  const busyMs = totalMs - (layerMs.get('idle') ?? 0);
  const percent = (ms: number): string => `${((100 * ms) / busyMs).toFixed(1).padStart(5)}%`;
  const lines = [
    `sampled ${(totalMs / 1000).toFixed(1)} s on the main thread, ${((100 * busyMs) / totalMs).toFixed(0)}% busy; shares below are of busy time`,
    '',
    'by layer (self time):',
  ];
  for (const [layer, ms] of [...layerMs].sort((a, b) => b[1] - a[1]))
    if (layer !== 'idle' && ms / busyMs >= 0.001) lines.push(`  ${percent(ms)}  ${layer}`);
  lines.push('', `top ${top} functions by self time:`);
  const functions = [...selfMs].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
  for (const [name, ms] of functions.slice(0, top)) lines.push(`  ${percent(ms)}  ${name}`);
  return lines.join('\n');
}

async function profileWorkload(
  workload: Workload,
  dataDir: string,
  workDir: string,
  outDir: string,
  durationSec: number,
  concurrency: number,
  connections: number,
  workers: number,
): Promise<Array<{ role: string; file: string }>> {
  const profileDir = path.join(workDir, `prof-${workload.id}`);
  const server = await startKv({
    dataDir,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir],
    args: workers > 1 ? ['--workers', String(workers)] : [],
  });
  const roles = new Map<number, string>([[server.pid, workers > 1 ? 'supervisor' : 'server']]);
  for (const child of clusterChildren(server.pid)) roles.set(child.pid, child.role);
  try {
    const result = await measureThroughput({
      server,
      workload,
      concurrency,
      connections,
      key: roundKey(KEY_SPACE, 0),
      durationSec,
      workDir,
    });
    log(
      `${workload.label} c=${concurrency}: ${Math.round(result.okPerSec)}/s, p50 ${result.p50Ms.toFixed(2)} ms, server CPU ${Math.round(result.serverCpuUsPerCall)} µs/call`,
    );
  } finally {
    // The profile is written when the process exits cleanly.
    await server.stop();
  }
  const written = readdirSync(profileDir).filter((name) => name.endsWith('.cpuprofile'));
  if (written.length === 0) throw new Error(`no .cpuprofile written for ${workload.id}`);
  return written.map((name) => {
    // Node names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
    const pid = Number(name.split('.')[3]);
    const role = roles.get(pid) ?? `pid ${pid}`;
    const kept = path.join(outDir, `kv-${workload.id}-c${concurrency}${workers > 1 ? `-${role.replace(' ', '')}-${pid}` : ''}.cpuprofile`);
    renameSync(path.join(profileDir, name), kept);
    return { role, file: kept };
  });
}

async function main(): Promise<void> {
  const durationSec = flag('--duration', 15);
  const concurrency = flag('--concurrency', 64);
  const workers = flag('--workers', 1);
  const connections = flag('--connections', 1);
  const outDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const work = makeTempDir('profile');
  const data = makeTempDir('profile-kv');
  try {
    // Loaded before the profiled server starts, so the profiles hold only the measured load.
    await preload('kv', data.dir, KEY_SPACE);
    for (const workload of WORKLOADS) {
      for (const { role, file } of await profileWorkload(
        workload,
        data.dir,
        work.dir,
        outDir,
        durationSec,
        concurrency,
        connections,
        workers,
      )) {
        process.stdout.write(`\n=== kv ${workload.label} c=${concurrency}, ${role} (${path.relative(REPO_ROOT, file)}) ===\n`);
        process.stdout.write(`${summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)}\n`);
      }
    }
  } finally {
    work.remove();
    data.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`profile-kv: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
