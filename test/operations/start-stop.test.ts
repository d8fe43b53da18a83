import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { testWithTool } from '../support/find-tool';
import { runCommand } from '../support/kvctl-process';
import { REPO_ROOT, runServerToExit, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('kv-server --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  await expect(runServerToExit(['--version'])).resolves.toEqual({ code: 0, stdout: `kv-server ${version}\n`, stderr: '' });
});

test('SIGTERM to the pid of `npm start` stops the server itself, which releases its data directory', async () => {
  const dataDir = makeTempDir();
  const npm = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
  let serverPid: number | undefined;
  try {
    await pollUntil('the server to listen', () => (output.includes('kv-server listening on') ? true : undefined), 30_000);
    // The data directory's lock names its owner: the node process, not npm.
    serverPid = Number(readFileSync(path.join(dataDir, 'LOCK', 'OWNER'), 'utf8').split('\n')[0]);
    expect(serverPid).not.toBe(npm.pid);

    npm.kill('SIGTERM');
    expect(await exited).toBe(0);
    await pollUntil('the server process to be gone', () => (isAlive(serverPid!) ? undefined : true), 5_000);
  } finally {
    if (serverPid !== undefined && isAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    npm.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a signal repeated at once (npm forwarding the terminal's Ctrl-C) does not cut the drain short", async () => {
  const server = await startServer({ env: { KV_LOG_LEVEL: 'info' } });
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGINT');
  await pollUntil('the drain to start', () => (server.output().includes('shutting down') ? true : undefined));
  server.child.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(server.output()).toContain('stopped; data directory released');
});

const { tool: systemdAnalyze, test: testSystemdAnalyze } = testWithTool('systemd-analyze');
testSystemdAnalyze('the systemd unit in docs/operations.md passes systemd-analyze verify', async () => {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs/operations.md'), 'utf8');
  const unit = /```ini\n([\s\S]*?)```/.exec(doc)?.[1];
  expect(unit).toContain('ExecStart=/usr/bin/node /opt/kv/dist/main.js');
  const dir = makeTempDir('kv-unit-');
  try {
    // verify checks that ExecStart's program exists: point it at this machine's node.
    writeFileSync(path.join(dir, 'kv.service'), unit!.replace('/usr/bin/node', process.execPath));
    const result = await runCommand(systemdAnalyze!, ['verify', path.join(dir, 'kv.service')]);
    // Unknown keys and unparsable values are only warnings on stderr; an empty stderr means a clean unit.
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
