import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openFileStore } from '../../src/store/file';
import { testWithTool } from '../support/find-tool';
import { runCommand } from '../support/kvctl-process';
import { encodeFrame, Flag, FrameType, RawHttp2Connection } from '../support/raw-http2';
import { REPO_ROOT, runServerToExit, spawnServer, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { writeBigLog } from '../support/write-big-log';

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

test('each command the packages install (npx kv-server, npx kvctl, npm link) is a committed executable, so a rebuild of dist/ cannot make it "Permission denied"', () => {
  const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  for (const packageDir of ['.', 'clients/kvctl']) {
    const { bin } = JSON.parse(readFileSync(path.join(REPO_ROOT, packageDir, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    for (const [name, file] of Object.entries(bin)) {
      const tracked = path.join(packageDir, file);
      // git's mode, not the working tree's: dist/ is built, untracked, and written without the x bit.
      const listed = execFileSync('git', ['ls-files', '--stage', '--', tracked], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect({ name, mode: listed.split(' ')[0] }).toEqual({ name, mode: '100755' });
    }
  }
  // Run as a shell runs it: by its path, through its #! line.
  expect(execFileSync(path.join(REPO_ROOT, 'bin/kv-server.js'), ['--version'], { encoding: 'utf8' })).toBe(`kv-server ${version}\n`);
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
  const server = await startServer({ args: ['--shutdown-grace-ms', '1500'], env: { KV_LOG_LEVEL: 'info' } });
  // A call in flight (its request never finished) holds the drain open for the whole grace,
  // so the repeat surely lands while the server drains, not while the process is exiting.
  const inFlight = await RawHttp2Connection.open(server.address);
  inFlight.openCall(1, '/kv.v1.KeyValueService/Set', server.address);
  // Frames are handled in order: once our PING is answered, the server holds the call.
  inFlight.write(encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8)));
  await inFlight.waitFor('the PING answered', (f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0);
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
  const firstAt = Date.now();
  server.child.kill('SIGINT');
  await pollUntil('the drain to start', () => (server.output().includes('shutting down') ? true : undefined));
  server.child.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(Date.now() - firstAt).toBeGreaterThanOrEqual(1400); // the grace was not cut short
  expect(server.output()).toContain('stopped; data directory released');
  inFlight.close();
});

/** A child's output as it comes, and its exit. */
function watchChild(child: ChildProcess): { output: () => { stdout: string; stderr: string }; exited: Promise<number | null> } {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { output: () => ({ stdout, stderr }), exited: new Promise((resolve) => child.once('exit', resolve)) };
}

test('SIGTERM while a big log is recovered stops the recovery: exit 0, one line, nothing served, the directory released and intact', async () => {
  const dataDir = makeTempDir();
  try {
    // Seconds of replay (about 5 s here), written in well under that.
    const revision = await writeBigLog(dataDir, 1_000_000);
    const child = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', dataDir], { KV_LOG_LEVEL: 'info' });
    const { output, exited } = watchChild(child);
    // OWNER is written when the lock is taken, right before recovery starts.
    await pollUntil('recovery to start', () => (existsSync(path.join(dataDir, 'LOCK', 'OWNER')) ? true : undefined), 30_000);
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    process.stdout.write(`recovery of a ${revision}-record log stopped ${Date.now() - signalledAt} ms after SIGTERM\n`);
    const { stdout, stderr } = output();
    expect(stdout).toBe('');
    expect(stderr).not.toContain('store opened');
    expect(stderr.split('\n').filter((line) => !line.startsWith('{'))).toEqual([
      'kv-server: stopped by SIGTERM while opening the store (nothing served, data directory not held)',
      '',
    ]);
    expect(existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
    const store = await openFileStore({ dataDir });
    expect(store.revision).toBe(revision);
    await store.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('SIGINT while waiting for a lock whose owner cannot be checked stops at once and leaves that lock alone', async () => {
  const dataDir = makeTempDir();
  try {
    // A fresh LOCK without OWNER: the server watches it for up to 15 s before deciding.
    mkdirSync(path.join(dataDir, 'LOCK'));
    const child = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', dataDir], { KV_LOG_LEVEL: 'info' });
    const { output, exited } = watchChild(child);
    await pollUntil(
      'the server to wait for the lock',
      () => (output().stderr.includes('waiting to see it refresh') ? true : undefined),
      30_000,
    );
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output().stderr).toContain('kv-server: stopped by SIGINT while opening the store (nothing served, data directory not held)\n');
    expect(existsSync(path.join(dataDir, 'LOCK'))).toBe(true);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
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
