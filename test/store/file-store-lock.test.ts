/** The file engine and its data directory lock. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LockedError } from '../../src/store/errors';
import { openFileStore } from '../../src/store/file';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

describe('file engine: directory lock', () => {
  test('a second opener in the same process gets LockedError saying the directory is already open here', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const err = await openFileStore({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toBe(`data directory ${dataDir} is already open in this process`);
    await store.close();
    // Released on close: it opens now.
    const again = await openFileStore({ dataDir });
    await again.close();
  });

  test('a second opener in another process gets LockedError naming the directory and our pid', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'open-once.ts'), dataDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(3);
    expect(JSON.parse(out)).toEqual({
      code: 'LOCKED',
      message: `data directory ${dataDir} is in use by another process (pid ${process.pid})`,
    });
    await store.close();
  });

  test("a SIGKILLed owner's lock is taken over at once, without deleting data", async () => {
    const dataDir = dirs.make();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'open-once.ts'), dataDir, 'hold'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await pollUntil('the child to hold the lock', () => (out.includes('holding') ? true : undefined), 20_000);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(true);
    const started = Date.now();
    const store = await openFileStore({ dataDir });
    expect(Date.now() - started).toBeLessThan(5_000); // not the 10 s staleness wait
    expect(await store.get('held')).toMatchObject({ value: true, modRevision: 1 });
    await store.close();
  });
});
