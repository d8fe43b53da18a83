/**
 * A watcher that reads so slowly that the changes it still needed left the
 * history window is ended with RESOURCE_EXHAUSTED (reason WATCH_TOO_SLOW).
 * It is ended only then, so no start_revision can resume it: the error
 * says that the changes left the history, the last revision the watch was
 * sent and the oldest revision still kept, and to read the state again.
 * (It used to say "watch again with start_revision N", which always failed
 * COMPACTED.) The SDK resumes on it by itself and then throws that
 * COMPACTED, with oldestRevision.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KvClient, KvError, type WatchResumeChange } from '@kv/client';
import { KeyValueServiceClient, type WatchResponse } from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

// A small window, and values large enough that a paused stream's queue passes its bound (4 MiB) long before the writes end.
const WINDOW = 100;
const VALUE = 'x'.repeat(40_000);

let server: RunningServer;
let kv: KvClient;
beforeAll(async () => {
  server = await startServer({ args: ['--watch-history-changes', String(WINDOW)] });
  kv = new KvClient(server.address);
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

/** Writes enough under `prefix` to move the window well past what a paused watcher was sent; returns the last revision. */
async function writeMuch(prefix: string): Promise<number> {
  let revision = 0;
  for (let i = 0; i < 4 * WINDOW; i++) revision = await kv.set(`${prefix}${i % 20}`, VALUE);
  return revision;
}

test('a raw stream that stops reading is ended with the last revision it was sent, the oldest kept, and "read the state again"', async () => {
  const client = new KeyValueServiceClient(server.address, credentials.createInsecure());
  const messages: WatchResponse[] = [];
  let error: ServiceError | undefined;
  const call = client.watch({ prefix: 's/', startRevision: 0, prevEntry: true, fragment: false }, new Metadata());
  call.on('data', (m: WatchResponse) => messages.push(m));
  call.on('error', (e: ServiceError) => (error = e));
  try {
    await pollUntil('the first message', () => (messages.length > 0 ? true : undefined));
    call.pause();
    const last = await writeMuch('s/');
    call.resume();
    const ended = await pollUntil('the stream to end', () => error, 30_000);
    expect(ended.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(ended.metadata.get('kv-reason')).toEqual(['WATCH_TOO_SLOW']);
    // Every change up to the last revision received, and none after.
    const received = messages.at(-1)?.revision ?? 0;
    const events = messages.flatMap((m) => m.events).map((e) => e.entry?.modRevision);
    expect(events.at(-1)).toBe(received);
    expect(ended.metadata.get('kv-resume-revision')).toEqual([String(received + 1)]);
    const oldest = Number(/oldest revision available: (\d+)/.exec(ended.details)?.[1]);
    // The window had already moved past the resume revision: that is why the watcher was ended.
    expect(oldest).toBeGreaterThan(received + 1);
    expect(oldest).toBeLessThanOrEqual(last - WINDOW + 1);
    // The oldest revision in a trailer too, as with COMPACTED.
    expect(ended.metadata.get('kv-oldest-revision')).toEqual([String(oldest)]);
    expect(ended.details).toBe(
      `the watcher read too slowly: the changes it still needed left the change history kept (the last revision it was sent is ${received}; ` +
        `oldest revision available: ${oldest}); read the current state again, then watch from the revision it was read at + 1 ` +
        "(of a List in pages, the first page's)",
    );
    expect(ended.details).not.toContain('watch again with start_revision');
  } finally {
    call.cancel();
    client.close();
  }
});

test('the SDK resumes on WATCH_TOO_SLOW and then throws COMPACTED with oldestRevision: read the state again', async () => {
  const resumes: WatchResumeChange[] = [];
  const first = await kv.set('t/first', 1);
  const watch = kv.watch({ prefix: 't/', startRevision: first, prevEntry: true, onResume: (change) => resumes.push(change) });
  const iterator = watch[Symbol.asyncIterator]();
  // The consumer takes the first event, then stops while the writes go on.
  expect((await iterator.next()).value).toMatchObject({ key: 't/first' });
  const last = await writeMuch('t/');
  let thrown: unknown;
  try {
    for (;;) if ((await iterator.next()).done === true) break;
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(KvError);
  const error = thrown as KvError;
  expect(error).toMatchObject({ code: status.OUT_OF_RANGE, reason: 'COMPACTED' });
  expect(error.oldestRevision).toBeGreaterThan(watch.revision + 1);
  expect(error.oldestRevision).toBeLessThanOrEqual(last - WINDOW + 1);
  // onResume heard why the stream was lost, in the server's words.
  expect(resumes).toEqual([
    {
      state: 'lost',
      revision: watch.revision + 1,
      reason: expect.stringContaining('the changes it still needed left the change history kept') as string,
    },
  ]);
});
