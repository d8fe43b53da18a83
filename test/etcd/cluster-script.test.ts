/** npm run cluster: it prints every endpoint and, on SIGTERM, stops every process it started (by pid) and exits 0. */
import { spawn } from 'node:child_process';
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

describeEtcd('npm run cluster', () => {
  test('prints etcd and frontend endpoints and leaves no process behind on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/cluster.ts'), '--frontends', '1', '--first-port', String(port)],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await pollUntil('the cluster to be ready', () => (output.includes('Ctrl-C stops everything') ? true : undefined), 60_000);
      expect(output).toMatch(/--etcd-endpoints http:\/\/127\.0\.0\.1:\d+,http:\/\/127\.0\.0\.1:\d+,http:\/\/127\.0\.0\.1:\d+\n/);
      expect(output).toContain(`  127.0.0.1:${port}\n`);
      const pids = [...output.matchAll(/pids ([\d ]+)\)/g)].flatMap((m) => m[1].split(' ').map(Number));
      expect(pids).toHaveLength(4);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toContain('stopped\n');
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
