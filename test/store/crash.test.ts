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
import type { Entry } from '../../src/store/key-value-store';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

type Ack = { type: 'S'; revision: number; key: string; value: unknown } | { type: 'C'; revision: number; prefix: string };

/**
 * Runs the writer until it has acknowledged something, lets it run a random
 * 100–400 ms more (or until `killWhen` says so), then SIGKILLs it.
 */
async function runAndKill(dataDir: string, mode: string, killWhen?: () => boolean): Promise<Ack[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'crash-writer.ts'), dataDir, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await pollUntil(
    'the first acknowledged write',
    () =>
      (out.length > 0 ? true : undefined) ??
      (child.exitCode !== null
        ? (() => {
            throw new Error(`writer exited: ${err}`);
          })()
        : undefined),
    30_000,
  );
  if (killWhen === undefined)
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 300)); // the crash moment, not synchronisation
  else await pollUntil('the moment to kill', () => (killWhen() ? true : undefined), 30_000);
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

/**
 * Checks the reopened store against everything ever acknowledged in this
 * directory, exactly. Each change takes the next revision and the log is
 * replayed as a prefix, so the store holds every change up to its revision,
 * acknowledged or not. The test knows the acknowledged ones; the revisions in
 * between ("unknown") are sets or clears whose acknowledgement the kill cut off.
 * A c/ key may therefore be missing only if a clear came after its last
 * acknowledged set: an acknowledged one, or an unknown revision — and an
 * unknown clear there removed every c/ key created before it.
 */
async function verify(dataDir: string, acks: Ack[]): Promise<number> {
  const store = await openFileStore({ dataDir });
  try {
    const lastSet = new Map<string, Extract<Ack, { type: 'S' }>>();
    const acked = new Set<number>();
    let lastClear = 0;
    let maxRevision = 0;
    for (const a of acks) {
      acked.add(a.revision);
      maxRevision = Math.max(maxRevision, a.revision);
      if (a.type === 'C') lastClear = Math.max(lastClear, a.revision);
      else if ((lastSet.get(a.key)?.revision ?? 0) < a.revision) lastSet.set(a.key, a);
    }
    expect(store.revision).toBeGreaterThanOrEqual(maxRevision);
    const present = new Map<string, Entry>();
    for (const key of (await store.listKeys()).keys) present.set(key, (await store.get(key)) as Entry);
    // Revisions that are visibly sets (a present key's modRevision) are no clear.
    const setRevisions = new Set([...present.values()].map((e) => e.modRevision));
    for (const e of present.values()) {
      // A newer value than the last acknowledged one can only come from an unacknowledged set.
      const a = lastSet.get(e.key);
      if (a === undefined || e.modRevision > a.revision) expect(acked.has(e.modRevision)).toBe(false);
      if (e.key.startsWith('c/')) expect(e.createRevision).toBeGreaterThan(lastClear);
    }
    let newestMissing = 0;
    for (const [key, a] of lastSet) {
      const e = present.get(key);
      if (e === undefined) {
        expect(key.startsWith('c/')).toBe(true); // only clears remove keys
        if (a.revision > lastClear) newestMissing = Math.max(newestMissing, a.revision);
        continue;
      }
      expect(e.modRevision).toBeGreaterThanOrEqual(a.revision);
      if (e.modRevision === a.revision) expect(e.value).toEqual(a.value);
    }
    if (newestMissing > 0) {
      // The earliest revision after it that could be an unacknowledged clear; a later one
      // would only demand more of the keys present.
      let clear = newestMissing + 1;
      while (clear <= store.revision && (acked.has(clear) || setRevisions.has(clear))) clear++;
      expect(clear).toBeLessThanOrEqual(store.revision);
      for (const e of present.values()) if (e.key.startsWith('c/')) expect(e.createRevision).toBeGreaterThan(clear);
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

  test('killed while writing a checkpoint (its .tmp half written), 3 times: every acknowledged write and every earlier key survives', async () => {
    const dataDir = dirs.make();
    // Enough keys that writing a checkpoint takes a while.
    const preload = await openFileStore({ dataDir, fsync: 'never' });
    const pad = 'x'.repeat(100);
    for (let i = 0; i < 40_000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => preload.set(`p/${i + j}`, { pad })));
    await preload.close();
    const tmpWritten = (): boolean =>
      fs.readdirSync(dataDir).some((f) => f.endsWith('.snap.tmp') && fs.statSync(path.join(dataDir, f), { throwIfNoEntry: false })?.size);
    const acks: Ack[] = [];
    for (let kill = 0; kill < 3; kill++) {
      // The writer's store is due a checkpoint as it opens: it starts one at once, while writing.
      acks.push(...(await runAndKill(dataDir, 'checkpoint', tmpWritten)));
      expect(fs.readdirSync(dataDir).some((f) => f.endsWith('.snap.tmp'))).toBe(true);
      await verify(dataDir, acks);
      const store = await openFileStore({ dataDir });
      expect((await store.listKeys({ prefix: 'p/' })).keys).toHaveLength(40_000);
      await store.close();
    }
  });

  test('verify() notices a lost acknowledged c/ write even when it was the newest c/ write', async () => {
    const dataDir = dirs.make();
    const store = await openFileStore({ dataDir });
    await store.set('c/1', { n: 1 }); // 1
    await store.clear({ prefix: 'c/' }); // 2
    await store.set('a/1', { n: 2 }); // 3: where the child says c/9 went
    await store.set('a/1', { n: 3 }); // 4: hides revision 3
    await store.set('a/2', { n: 4 }); // 5
    await store.close();
    const told: Ack[] = [
      { type: 'S', revision: 1, key: 'c/1', value: { n: 1 } },
      { type: 'C', revision: 2, prefix: 'c/' },
      { type: 'S', revision: 3, key: 'c/9', value: { n: 2 } },
      { type: 'S', revision: 5, key: 'a/2', value: { n: 4 } },
    ];
    await expect(verify(dataDir, told)).rejects.toThrow();
    // With the truth it passes, also when the kill cut off the acknowledgements of a/1.
    await verify(dataDir, [told[0], told[1], told[3]]);
  });

  test('clears are atomic and acknowledged clears and sets survive 6 kills', async () => {
    const { acks } = await crashLoop('clear', 6);
    expect(acks.some((a) => a.type === 'C')).toBe(true);
  });
});
