/**
 * Crash safety with real processes: a child writes under concurrency and
 * reports every acknowledged write; it is SIGKILLed at a random moment; the
 * store must then open cleanly (taking over the dead child's lock) and hold
 * every acknowledged write. Each test repeats this several times on the same
 * directory, so recovery also runs on recovered data.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openFileStore } from '../../src/store/file';
import { pollUntil, tempDataDirs } from './temp-data-dir';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

type Ack = { type: 'S'; revision: number; key: string; value: unknown } | { type: 'C'; revision: number; prefix: string };

/** Runs the writer until it has acknowledged something, lets it run a random 100–400 ms more, then SIGKILLs it. */
async function runAndKill(dataDir: string, mode: string): Promise<Ack[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'crash-writer.ts'), dataDir, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await pollUntil('the first acknowledged write', () => (out.length > 0 ? true : undefined) ?? (child.exitCode !== null ? (() => { throw new Error(`writer exited: ${err}`); })() : undefined), 30_000);
  await new Promise((r) => setTimeout(r, 100 + Math.random() * 300)); // the crash moment, not synchronisation
  child.kill('SIGKILL');
  // Reaped (no zombie), so its pid is really gone when the store checks the lock.
  await exited;
  expect(child.signalCode).toBe('SIGKILL');
  const acks: Ack[] = [];
  for (const line of out.split('\n')) {
    if (!line.endsWith('}') && !line.startsWith('C ')) continue; // the last line may be cut short
    const [type, rev, key, ...rest] = line.split(' ');
    if (type === 'S') acks.push({ type, revision: Number(rev), key, value: JSON.parse(rest.join(' ')) });
    else if (type === 'C' && key === 'c/') acks.push({ type, revision: Number(rev), prefix: key });
  }
  return acks;
}

/** Checks the reopened store against everything ever acknowledged in this directory. */
async function verify(dataDir: string, acks: Ack[]): Promise<number> {
  const store = await openFileStore({ dataDir });
  try {
    const lastSet = new Map<string, Extract<Ack, { type: 'S' }>>();
    let lastClear = 0;
    let maxRevision = 0;
    for (const a of acks) {
      maxRevision = Math.max(maxRevision, a.revision);
      if (a.type === 'C') lastClear = Math.max(lastClear, a.revision);
      else if ((lastSet.get(a.key)?.revision ?? 0) < a.revision) lastSet.set(a.key, a);
    }
    expect(store.revision).toBeGreaterThanOrEqual(maxRevision);
    // An acknowledged c/ write may be gone only by a clear that was in flight at
    // the kill; that clear then removed every c/ key older than it.
    let missingCleared = 0;
    for (const [key, a] of lastSet) {
      const e = await store.get(key);
      if (key.startsWith('c/') && (e === undefined || a.revision <= lastClear)) {
        if (e === undefined && a.revision > lastClear) missingCleared = Math.max(missingCleared, a.revision);
        continue;
      }
      expect(e).toBeDefined();
      expect(e?.modRevision).toBeGreaterThanOrEqual(a.revision);
      if (e?.modRevision === a.revision) expect(e.value).toEqual(a.value);
    }
    for (const key of (await store.listKeys({ prefix: 'c/' })).keys) {
      const e = await store.get(key);
      expect(e?.createRevision).toBeGreaterThan(Math.max(lastClear, missingCleared));
    }
    return lastSet.size;
  } finally {
    await store.close();
  }
}

async function crashLoop(mode: string, kills: number): Promise<{ dataDir: string; acks: Ack[] }> {
  const dataDir = dirs.make();
  const acks: Ack[] = [];
  for (let i = 0; i < kills; i++) {
    const got = await runAndKill(dataDir, mode);
    expect(got.length).toBeGreaterThan(0);
    acks.push(...got);
    await verify(dataDir, acks);
  }
  return { dataDir, acks };
}

describe('file engine: SIGKILL during writes', () => {
  test('every acknowledged set survives 8 kills', async () => {
    const { acks } = await crashLoop('set', 8);
    expect(acks.length).toBeGreaterThan(100);
  });

  test('every acknowledged write survives 8 kills while compaction runs all the time', async () => {
    const { dataDir } = await crashLoop('compact', 8);
    // Compaction really ran: a snapshot replaced the first log.
    expect(fs.readdirSync(dataDir).some((f) => f.endsWith('.snap'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'wal-0000000000000001.log'))).toBe(false);
  });

  test('clears are atomic and acknowledged clears and sets survive 6 kills', async () => {
    const { acks } = await crashLoop('clear', 6);
    expect(acks.some((a) => a.type === 'C')).toBe(true);
  });
});
