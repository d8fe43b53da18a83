/**
 * A watch that resumes on a server whose revision went back (its store
 * restored from an earlier backup, on the same address) must not go on as
 * if nothing happened: the restored store gives the revisions after the
 * backup's to new changes, and a watch resuming after the last revision it
 * gave would pass over them without a word. The server's first message says
 * another history id than the one the watch followed (and a revision below
 * one the watch gave): the loop throws KvError OUT_OF_RANGE with reason
 * REVISION_WENT_BACK. The same once the restored store has gone past the
 * watch's revision, where only the history id tells.
 */
import path from 'node:path';
import { KvClient, KvError, status, type KvWatchEvent, type WatchResumeChange } from '@kv/client';
import { freePort } from '../support/free-port';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

// Progress every 500 ms: the restored server's first message (progress, for a start in its future) comes soon.
const FLAGS = ['--watch-progress-ms', '500'];

/** A server on a fixed address (a restored one takes it over later), its data in `dir`/a, and a client of it. */
async function serverAndClient(dir: string): Promise<{ address: string; servers: RunningServer[]; kv: KvClient }> {
  const address = `127.0.0.1:${await freePort()}`;
  const servers = [await startServer({ listen: address, dataDir: path.join(dir, 'a'), args: FLAGS })];
  return { address, servers, kv: new KvClient(address, { deadlineMs: 5000 }) };
}

/**
 * Ten keys, a backup of them at revision 10, and a watch on them from now
 * (started: it has said revision 10), whose events and end are recorded.
 */
async function backedUpAndWatched(
  kv: KvClient,
  backupFile: string,
  onResume?: (change: WatchResumeChange) => void,
): Promise<{ watch: ReturnType<KvClient['watch']>; seen: KvWatchEvent[]; ended: () => { error: unknown } | undefined }> {
  for (let i = 0; i < 10; i++) await kv.set(`w/${i}`, i);
  expect((await kv.backup(backupFile)).revision).toBe(10);
  const watch = kv.watch({ prefix: 'w/', onResume });
  const seen: KvWatchEvent[] = [];
  let ended: { error: unknown } | undefined;
  void (async () => {
    for await (const event of watch) seen.push(event);
  })().then(
    () => (ended = { error: undefined }),
    (error: unknown) => (ended = { error }),
  );
  await pollUntil('the watch to start', () => (watch.revision === 10 ? true : undefined));
  return { watch, seen, ended: () => ended };
}

test('a watch resumed on a server restored from an earlier backup throws REVISION_WENT_BACK instead of skipping its changes', async () => {
  const dir = makeTempDir('kv-went-back-');
  const { address, servers, kv } = await serverAndClient(dir);
  try {
    const told: WatchResumeChange[] = [];
    const { watch, seen, ended } = await backedUpAndWatched(kv, path.join(dir, 'at-10.backup'), (change) => told.push(change));
    for (let i = 10; i < 30; i++) await kv.set(`w/${i}`, i);
    await pollUntil('revisions 11 to 30 watched', () => (watch.revision === 30 ? true : undefined));
    expect(seen.map((event) => event.revision)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));

    await servers[0].stop();
    servers.push(
      await startServer({
        listen: address,
        dataDir: path.join(dir, 'b'),
        args: [...FLAGS, '--restore-from', path.join(dir, 'at-10.backup')],
      }),
    );
    // A read waits for the channel to reconnect (a write is not retried); the restored store has what the backup had.
    expect((await kv.get('w/9'))?.modRevision).toBe(10);
    // New changes on the restored store take revisions 11, 12, ...: the ones the watch already gave for others.
    for (let i = 0; i < 5; i++) await kv.set(`w/c${i}`, i);

    const { error } = await pollUntil('the watch to end', ended, 20_000);
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({ code: status.OUT_OF_RANGE, reason: 'REVISION_WENT_BACK' });
    // The restored store's history id, in the stream's first message, is not the one the watch followed.
    expect((error as KvError).message).toMatch(
      /^the server's store has another history \(id [0-9a-f]{16}\) than the one this watch followed \(id [0-9a-f]{16}\): its revisions may name other changes \(restored from a backup, or its machine went down with --fsync interval or never\); list again and watch from the listing's revision \+ 1$/,
    );
    // Nothing of the restored store was given as if it followed revision 30.
    expect(seen).toHaveLength(20);
    expect(told.map((change) => change.state)).toEqual(['lost']);
  } finally {
    kv.close();
    for (const server of servers) await server.stop();
  }
}, 60_000);

test('a watch resumed on a restored store already past its revision throws REVISION_WENT_BACK: the history id tells what the revision cannot', async () => {
  const dir = makeTempDir('kv-other-history-');
  const { address, servers, kv } = await serverAndClient(dir);
  try {
    const { watch, seen, ended } = await backedUpAndWatched(kv, path.join(dir, 'at-10.backup'));
    for (let i = 10; i < 20; i++) await kv.set(`w/${i}`, i);
    await pollUntil('revisions 11 to 20 watched', () => (watch.revision === 20 ? true : undefined));
    const followed = watch.historyId;
    expect(followed).toMatch(/^[0-9a-f]{16}$/);
    await servers[0].stop();

    // The restored store takes 15 writes (revisions 11 to 25, other changes than the watch gave) before the watch can reach it.
    const aside = await startServer({ dataDir: path.join(dir, 'b'), args: [...FLAGS, '--restore-from', path.join(dir, 'at-10.backup')] });
    const other = new KvClient(aside.address, { deadlineMs: 5000 });
    try {
      for (let i = 0; i < 15; i++) await other.set(`w/c${i}`, i);
    } finally {
      other.close();
      await aside.stop();
    }
    servers.push(await startServer({ listen: address, dataDir: path.join(dir, 'b'), args: FLAGS }));

    const { error } = await pollUntil('the watch to end', ended, 20_000);
    expect(error).toMatchObject({ code: status.OUT_OF_RANGE, reason: 'REVISION_WENT_BACK' });
    expect((error as KvError).message).toContain(`than the one this watch followed (id ${followed})`);
    // Revisions 21 to 25 of the restored store were not given as if they followed 20.
    expect(seen.map((event) => event.revision)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
  } finally {
    kv.close();
    for (const server of servers) await server.stop();
  }
}, 60_000);
