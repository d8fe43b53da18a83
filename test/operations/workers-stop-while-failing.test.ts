/**
 * --workers on a data directory another server holds: the store owner
 * cannot open it and exits 1. A SIGTERM that comes as it fails must not turn
 * that into a clean stop: the exit code is 1 whenever the server said it
 * could not open the store (the supervisor ignored what the stop found).
 */
import { spawnServer, startServer } from '../support/server-process';

test('SIGTERM at any moment while the store owner fails to open a held directory: "cannot open the store" is never exit 0', async () => {
  const holder = await startServer();
  try {
    const outcomes: string[] = [];
    for (const delayMs of [150, 250, 300, 350, 400, 450, 500, 600]) {
      const child = spawnServer(['--workers', '2', '--listen', '127.0.0.1:0', '--data-dir', holder.dataDir]);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill('SIGTERM');
      const code = await exited;
      const couldNotOpen = stderr.includes('cannot open the store');
      outcomes.push(`${delayMs} ms: exit ${code}${couldNotOpen ? ', cannot open the store' : ''}`);
      if (couldNotOpen) expect({ delayMs, code }).toEqual({ delayMs, code: 1 });
      // Stopped before it failed; or (null) killed by the signal while Node still loaded its code, before any handler.
      else expect([0, null]).toContain(code);
    }
    process.stdout.write(`${outcomes.join('; ')}\n`);
  } finally {
    await holder.stop();
  }
}, 90_000);
