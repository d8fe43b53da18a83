/**
 * npm run cluster: it prints every endpoint and, on SIGTERM to npm (as a
 * process manager or `kill` sends it), stops every process it started (by
 * pid), removes the frontends' directories, and exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeWithEtcd, freePort } from '../support/etcd-cluster';
import { REPO_ROOT } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

const describeEtcd = describeWithEtcd();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals every process of the group led by `pid`, if any is left. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** `npm run cluster` with one frontend at `port`, once it says it is ready; `output()` is everything it printed so far. */
async function startCluster(
  port: number,
  ownGroup: boolean,
): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn('npm', ['run', '--silent', 'cluster', '--', '--frontends', '1', '--first-port', String(port)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const output = (): string => text;
  await pollUntil('the cluster to be ready', () => (text.includes('Ctrl-C stops everything') ? true : undefined), 60_000);
  return { child, output, exited };
}

describeEtcd('npm run cluster', () => {
  test('prints etcd and frontend endpoints and leaves no process behind on SIGTERM', async () => {
    const port = await freePort();
    // Through npm, as the docs run it: npm's shell must not stand between the signal and the script (it did: npm exited and left everything running).
    const { child, output, exited } = await startCluster(port, false);
    try {
      expect(output()).toMatch(/--etcd-endpoints http:\/\/127\.0\.0\.1:\d+,http:\/\/127\.0\.0\.1:\d+,http:\/\/127\.0\.0\.1:\d+\n/);
      expect(output()).toContain(`  127.0.0.1:${port}\n`);
      const pids = [...output().matchAll(/pids ([\d ]+)\)/g)].flatMap((m) => m[1].split(' ').map(Number));
      expect(pids).toHaveLength(4);
      const frontendArgs = readFileSync(`/proc/${pids[3]}/cmdline`, 'utf8').split('\0');
      const dataDir = frontendArgs[frontendArgs.indexOf('--data-dir') + 1];
      expect(frontendArgs.filter((arg) => arg === '--listen')).toHaveLength(1);
      expect(existsSync(dataDir)).toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output()).toContain('stopped\n');
      expect(pids.filter(alive)).toEqual([]);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('Ctrl-C, twice (SIGINT to the whole process group, npm and every child with it), stops everything and removes every directory it made', async () => {
    // A process group of its own, as a terminal's foreground job.
    const { child, output, exited } = await startCluster(await freePort(), true);
    try {
      const pids = [...output().matchAll(/pids ([\d ]+)\)/g)].flatMap((m) => m[1].split(' ').map(Number));
      const etcdArgs = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
      const etcdDir = path.dirname((etcdArgs.find((arg) => arg.startsWith('--data-dir=')) as string).slice('--data-dir='.length));
      const frontendArgs = readFileSync(`/proc/${pids[3]}/cmdline`, 'utf8').split('\0');
      const dataDir = frontendArgs[frontendArgs.indexOf('--data-dir') + 1];
      expect([existsSync(etcdDir), existsSync(dataDir)]).toEqual([true, true]);
      // Twice, as a hurried user (or a launcher that passes the signal on again) does: the stop still runs to its end.
      signalGroup(child.pid as number, 'SIGINT');
      await pollUntil('the stop to begin', () => (output().includes('SIGINT: stopping') ? true : undefined));
      signalGroup(child.pid as number, 'SIGINT');
      await exited;
      await pollUntil('every process it started to be gone', () => (pids.filter(alive).length === 0 ? true : undefined), 20_000);
      expect(output()).toContain('stopped\n');
      expect([existsSync(etcdDir), existsSync(dataDir)]).toEqual([false, false]);
    } finally {
      signalGroup(child.pid as number, 'SIGKILL');
    }
  });
});
