/**
 * kv.backup(FILE, { signal }): aborting stops the backup at once, even
 * while the server sends nothing (here it is SIGSTOPped mid-backup), with a
 * KvError CANCELLED; the unfinished file is removed and an older backup at
 * the path is kept. kvctl backup stops on Ctrl-C this way.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, KvError, status } from '@kv/client';
import { startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

test('a backup whose signal is aborted while the server is stopped rejects CANCELLED at once and leaves only the older file', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address);
  const dir = makeTempDir('sdk-backup-signal-');
  try {
    // Several messages' worth, so the server is stopped with the backup under way.
    for (let i = 0; i < 40; i++) await kv.set(`b/${i}`, 'x'.repeat(200_000));
    const file = path.join(dir, 'kv.backup');
    writeFileSync(file, 'the older backup');
    const abort = new AbortController();
    let stoppedAt = 0;
    const backup = kv.backup(file, {
      signal: abort.signal,
      onProgress: () => {
        if (stoppedAt !== 0) return;
        // The first message is in: stop the server, so nothing more comes, then abort.
        server.child.kill('SIGSTOP');
        stoppedAt = Date.now();
        setTimeout(() => abort.abort(), 200);
      },
    });
    const error = await backup.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({
      code: status.CANCELLED,
      reason: 'CANCELLED',
      message: 'the backup was stopped (its signal was aborted)',
    });
    // At once: not after a keep-alive or deadline noticed the stopped server.
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect(readdirSync(dir)).toEqual(['kv.backup']);
    expect(readFileSync(file, 'utf8')).toBe('the older backup');

    // Aborted before it starts: refused at once, nothing written.
    const already = AbortSignal.abort();
    await expect(kv.backup(path.join(dir, 'never.backup'), { signal: already })).rejects.toMatchObject({ code: status.CANCELLED });
    expect(readdirSync(dir)).toEqual(['kv.backup']);
    // Not a signal: one line, INVALID_ARGUMENT.
    await expect(kv.backup(path.join(dir, 'x.backup'), { signal: 'stop' as unknown as AbortSignal })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      message: 'signal must be an AbortSignal, got a string ("stop")',
    });
  } finally {
    server.child.kill('SIGCONT');
    kv.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
