/** Describes the machine and the software versions a benchmark ran on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ghzBinary } from './ghz';
import { REPO_ROOT } from './servers';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  /** Filesystem holding the data directories (the OS temp dir). */
  dataFilesystem: string;
}

export interface Versions {
  node: string;
  grpcJs: string;
  etcd: string;
  ghz: string;
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

export function describeMachine(): Machine {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    dataFilesystem: run('findmnt', ['-n', '-o', 'FSTYPE', '-T', os.tmpdir()]) ?? 'unknown',
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
  const commit = run('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = (run('git', ['status', '--porcelain', '--', 'src']) ?? '') !== '';
  return {
    node: process.version,
    grpcJs: packageVersion('@grpc/grpc-js'),
    etcd:
      run('etcd', ['--version'])
        ?.split('\n')[0]
        ?.replace(/^etcd Version:\s*/, '') ?? 'unknown',
    ghz: ghzModule?.[2] ?? 'unknown',
    kv: `${commit}${dirty ? '+dirty' : ''}`,
  };
}
