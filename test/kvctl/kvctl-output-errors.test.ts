/**
 * kvctl whose stdout cannot be written (a full disk: /dev/full answers
 * every write with ENOSPC): one line on stderr and exit 2, as `backup -`
 * already did, never Node's stack trace with exit 1 ("not found").
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { KVCTL_ARGV, kvctlEnv, type KvctlResult } from '../support/kvctl-process';
import { REPO_ROOT } from '../support/server-process';
import { serverWithClient } from '../support/sdk-fixture';

const fixture = serverWithClient();

/** kvctl with stdout on /dev/full; what it wrote to stderr and its exit code. */
function runIntoFullDisk(args: string[]): Promise<KvctlResult> {
  const full = openSync('/dev/full', 'w');
  try {
    const child = spawn(KVCTL_ARGV[0], [...KVCTL_ARGV.slice(1), ...args], {
      cwd: REPO_ROOT,
      env: kvctlEnv({ KV_ENDPOINTS: fixture.server.address }),
      stdio: ['ignore', full, 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout: '', stderr })));
  } finally {
    closeSync(full);
  }
}

test('every command that prints says in one line that it cannot write its output, and exits 2', async () => {
  await fixture.kv.set('full/a', { n: 1 });
  const commands = [
    ['get', 'full/a'],
    ['get', '--prefix', 'full/'],
    ['ls', 'full/'],
    ['set', 'full/b', '2'],
    ['health'],
    ['lease', 'ls'],
    ['txn', '--if', 'version(full/a) = 1', '--then', 'get full/a'],
    ['watch', 'full/a', '--rev', '1', '--count', '1'],
  ];
  const results = await Promise.all(commands.map((args) => runIntoFullDisk(args)));
  results.forEach((result, i) => {
    expect({ command: commands[i].join(' '), code: result.code, stderr: result.stderr }).toEqual({
      command: commands[i].join(' '),
      code: 2,
      stderr: 'kvctl: cannot write output: ENOSPC (no space left on device)\n',
    });
  });
  // The command itself was carried out: only its output was lost.
  expect((await fixture.kv.get('full/b'))?.value).toBe(2);
}, 60_000);
