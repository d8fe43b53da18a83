import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A new, empty directory under the OS temp dir. */
export function makeTempDir(label = 'kv-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), label));
}

/** Real temp directories for a suite; removes them all in cleanup(). */
export function tempDataDirs(): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const dir = makeTempDir('kv-store-test-');
      made.push(dir);
      return dir;
    },
    cleanup() {
      for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` (awaited if async) until it gives a value other than undefined, or fails after `ms`. */
export async function pollUntil<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
