/** Describes the machine and the software versions a benchmark ran on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { ghzBinary } from './ghz';
import { REPO_ROOT } from './servers';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  /** Filesystem holding the data directories (the OS temp dir). */
  dataFilesystem: string;
  /** V8's heap limit with node's default flags on this machine: what bounds kv-server's in-memory index. */
  nodeHeapLimitBytes: number;
}

export interface Versions {
  node: string;
  grpcJs: string;
  etcd: string;
  ghz: string;
  h2load: string;
  /** The kv commit benchmarked; "+dirty" when the tree had uncommitted changes. */
  kv: string;
}

function run(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * The newest commit that changed src/ in the checkout at `dir` (+dirty when
 * src/ has uncommitted changes): the code a run measured, named by a commit
 * that stays in the history when the bench's own commits are rebased.
 */
export function srcCommit(dir: string): string {
  const git = (args: string[]): string =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const dirty = git(['status', '--porcelain', '--', 'src']) !== '';
  return `${git(['log', '-1', '--format=%h', '--', 'src'])}${dirty ? '+dirty' : ''}`;
}

export function describeMachine(): Machine {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    dataFilesystem: run('findmnt', ['-n', '-o', 'FSTYPE', '-T', os.tmpdir()]) ?? 'unknown',
    // This process runs with node's default heap flags, as kv-server does.
    nodeHeapLimitBytes: v8.getHeapStatistics().heap_size_limit,
  };
}

function packageVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

export function describeVersions(): Versions {
  // `go install` builds report "dev" from --version; the module version is in the binary.
  const ghzModule = run('go', ['version', '-m', ghzBinary()])
    ?.split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[0] === 'mod');
  return {
    node: process.version,
    grpcJs: packageVersion('@grpc/grpc-js'),
    etcd:
      run('etcd', ['--version'])
        ?.split('\n')[0]
        ?.replace(/^etcd Version:\s*/, '') ?? 'unknown',
    ghz: ghzModule?.[2] ?? 'unknown',
    h2load: run('h2load', ['--version'])?.replace(/^h2load\s+/, '') ?? 'unknown',
    kv: srcCommit(REPO_ROOT),
  };
}
