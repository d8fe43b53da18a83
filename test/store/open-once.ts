/**
 * Child process for the lock tests: opens a store on argv[2]. With "hold",
 * writes one key, prints "holding" and waits to be killed; otherwise prints
 * the open error's code and message as JSON and exits 3.
 */
import { openFileStore } from '../../src/store/file';
import type { StoreError } from '../../src/store/errors';

async function main(): Promise<void> {
  const [dataDir, mode] = process.argv.slice(2);
  try {
    const store = await openFileStore({ dataDir });
    if (mode === 'hold') {
      await store.set('held', true);
      process.stdout.write('holding\n');
      setInterval(() => undefined, 1000);
      return;
    }
    await store.close();
    process.stdout.write('{"opened":true}\n');
  } catch (err) {
    const e = err as StoreError;
    process.stdout.write(`${JSON.stringify({ code: e.code, message: e.message })}\n`);
    process.exitCode = 3;
  }
}

void main();
