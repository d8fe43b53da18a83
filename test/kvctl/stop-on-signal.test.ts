/**
 * kvctl's StopOnSignal: a signal that arrives while a command runs its last
 * synchronous steps (a backup's read-back and rename) is delivered only
 * once the event loop turns; lastSignal() waits for that turn, so backup
 * and restore end by it instead of closing their listener first and exiting 0.
 * Run in a child process of its own: jest's sandboxed `process` does not
 * install real signal handlers.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/server-process';

const run = promisify(execFile);

const SCRIPT = `
const { StopOnSignal } = require(${JSON.stringify(path.join(REPO_ROOT, 'clients/kvctl/src/stop-on-signal.ts'))});
(async () => {
  const stop = new StopOnSignal();
  process.kill(process.pid, 'SIGTERM');
  // Synchronous work (a backup's read-back) while the signal arrives.
  const until = Date.now() + 100;
  while (Date.now() < until);
  const during = stop.signal;
  const after = await stop.lastSignal();
  const quiet = new StopOnSignal();
  const none = await quiet.lastSignal();
  stop.close();
  quiet.close();
  console.log(JSON.stringify({ during: during ?? null, after: after ?? null, none: none ?? null }));
})();
`;

test('a signal raised during synchronous work is seen by lastSignal() once the loop turns, not before; none is undefined', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '-e', SCRIPT], {
    cwd: REPO_ROOT,
    timeout: 30_000,
  });
  expect(JSON.parse(stdout)).toEqual({ during: null, after: 'SIGTERM', none: null });
});
