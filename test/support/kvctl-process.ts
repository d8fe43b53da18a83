import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './server-process';

/**
 * kvctl as npm links it (clients/kvctl/bin/kvctl.js, the compiled CLI), by its
 * path, so it runs the same from any working directory. Jest's global setup
 * rebuilds first if the sources changed since the last build.
 */
export const KVCTL_ARGV = [process.execPath, path.join(REPO_ROOT, 'clients/kvctl/bin/kvctl.js')];

/** The same, as one line for sh -c (a pipe into jq) or script(1). */
export const KVCTL_SHELL = KVCTL_ARGV.map((word) => `'${word}'`).join(' ');

export interface KvctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface KvctlOptions {
  /** KV_* variables for this run; any KV_* of the test's own environment is dropped. */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed (stdin is an empty pipe otherwise). */
  input?: string;
  timeoutMs?: number;
  /** Working directory (default: the repository). */
  cwd?: string;
}

/** The environment with the test runner's own KV_* variables removed, plus the given ones. */
export function kvctlEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KV_')));
  return { ...clean, ...env };
}

/** Runs kvctl to completion in a child process (stdout a pipe, so JSON output by default). */
export function runKvctl(args: string[], options: KvctlOptions = {}): Promise<KvctlResult> {
  return runCommand(KVCTL_ARGV[0], [...KVCTL_ARGV.slice(1), ...args], options);
}

/** Runs any command line the same way (sh -c pipelines, script(1)). */
export function runCommand(file: string, args: string[], options: KvctlOptions = {}): Promise<KvctlResult> {
  const child = spawn(file, args, { cwd: options.cwd ?? REPO_ROOT, env: kvctlEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** kvctl running in a child process (watch, import, backup…) until it ends by itself or by a signal. */
export interface RunningKvctl {
  readonly child: ChildProcess;
  /** What it wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Its exit code, or the signal that ended it. */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts kvctl with `env` (KV_* variables) and stdin closed; the test ends it (kill it in a finally). */
export function startKvctl(args: string[], env: Record<string, string> = {}): RunningKvctl {
  const child = spawn(KVCTL_ARGV[0], [...KVCTL_ARGV.slice(1), ...args], {
    cwd: REPO_ROOT,
    env: kvctlEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, ended };
}
