/**
 * Child process for the lock tests: locks the data directory argv[2] with
 * lockDataDir alone (no store). Prints "ready", then waits for a line "go" on
 * stdin (so that several children try at the same moment), then tries once:
 * on success prints {"won":true,"pid":N} and holds the lock until killed; on
 * failure prints the error's code and message as JSON and exits 3.
 * argv[3]: staleMs (optional).
 */
import readline from 'node:readline';
import { lockDataDir } from '../../src/store/file/data-dir-lock';
import type { StoreError } from '../../src/store/errors';
import { silentLogger } from '../../src/logger';

async function attempt(dataDir: string, staleMs: number | undefined): Promise<void> {
  try {
    await lockDataDir(dataDir, silentLogger, { staleMs });
    process.stdout.write(`${JSON.stringify({ won: true, pid: process.pid })}\n`);
    setInterval(() => undefined, 1000);
  } catch (err) {
    const e = err as StoreError;
    process.stdout.write(`${JSON.stringify({ code: e.code, message: e.message })}\n`);
    process.exit(3);
  }
}

function main(): void {
  const [dataDir, stale] = process.argv.slice(2);
  const staleMs = stale === undefined ? undefined : Number(stale);
  const lines = readline.createInterface({ input: process.stdin });
  let started = false;
  lines.on('line', (line) => {
    if (line.trim() === 'go' && !started) {
      started = true;
      void attempt(dataDir, staleMs);
    }
  });
  process.stdout.write('ready\n');
}

main();
