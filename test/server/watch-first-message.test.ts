/**
 * A Watch with start_revision whose replay of the history finds nothing
 * matching answers at once: its first message has no events, the revision
 * the server caught up to, progress_interval_ms and history_id. It used to
 * come only with the first progress message (--watch-progress-ms later), so
 * a stream lost before it resumed from the original start (COMPACTED once
 * the window had moved past it), and a progress interval above the SDK's
 * 10 s first-message wait made the SDK cancel healthy streams. Through one
 * process and through --workers 2 (each worker has a change feed of its
 * own).
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KvClient, type KvWatchEvent } from '@kv/client';
import { KeyValueServiceClient, type WatchRequest, type WatchResponse } from '../../src/gen/kv/v1/kv';
import { freePort } from '../support/free-port';
import { killCluster, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

// An hour between progress messages: a first message within seconds is not one.
const PROGRESS_MS = 3_600_000;
const HEX16 = /^[0-9a-f]{16}$/;

/** A raw client on a connection of its own (`channel` tells them apart), as a worker of --workers is dealt connections in turn. */
function rawClient(address: string, channel: number): KeyValueServiceClient {
  return new KeyValueServiceClient(address, credentials.createInsecure(), { 'grpc.kv_test_channel': channel });
}

/** Opens a raw Watch stream on `client`; collects messages and the final error. */
function rawWatch(client: KeyValueServiceClient, request: Partial<WatchRequest>) {
  const messages: WatchResponse[] = [];
  let error: ServiceError | undefined;
  const call = client.watch({ startRevision: 0, prevEntry: false, fragment: false, ...request }, new Metadata());
  call.on('data', (m: WatchResponse) => messages.push(m));
  call.on('error', (e: ServiceError) => (error = e));
  return { messages, error: () => error, close: () => call.cancel() };
}

/** A Get through `client`, so through its connection's worker: it answers once that worker is current with the store. */
function rawGet(client: KeyValueServiceClient, key: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.get({ key }, (error) => (error === null || error.code === status.NOT_FOUND ? resolve() : reject(error))),
  );
}

async function setMany(kv: KvClient, n: number): Promise<number> {
  let revision = 0;
  for (let i = 0; i < n; i++) revision = await kv.set(`q/k${i % 10}`, i);
  return revision;
}

/** The first message of each watch of the key q/none from revision 40, on one connection per client. */
async function firstMessages(clients: KeyValueServiceClient[]): Promise<WatchResponse[]> {
  const watches = clients.map((client) => rawWatch(client, { key: 'q/none', startRevision: 40 }));
  try {
    // Well under the progress interval, and under the SDK's 10 s wait for a first message.
    return await pollUntil(
      'the first message of every watch',
      () => {
        const failed = watches.find((w) => w.error() !== undefined);
        if (failed !== undefined) throw failed.error() as Error;
        return watches.every((w) => w.messages.length > 0) ? watches.map((w) => w.messages[0]) : undefined;
      },
      3000,
    );
  } finally {
    for (const w of watches) w.close();
  }
}

let server: RunningServer | undefined;
const open: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const client of open.splice(0)) client.close();
  if (server !== undefined) await killCluster(server);
  server = undefined;
});

test('one process: a watch from a revision whose replay finds nothing gets its first message at once, current to the store', async () => {
  server = await startServer({ args: ['--watch-progress-ms', String(PROGRESS_MS)] });
  const kv = new KvClient(server.address);
  open.push(kv);
  const current = await setMany(kv, 50);
  const client = rawClient(server.address, 0);
  open.push(client);
  const [first] = await firstMessages([client]);
  expect(first).toEqual({
    events: [],
    revision: current,
    fragment: false,
    progressIntervalMs: PROGRESS_MS,
    historyId: expect.stringMatching(HEX16) as string,
  });
});

test('--workers 2: the same on each worker, from its own change feed', async () => {
  server = await startServer({ args: ['--workers', '2', '--watch-progress-ms', String(PROGRESS_MS)] });
  const kv = new KvClient(server.address);
  open.push(kv);
  const current = await setMany(kv, 50);
  const clients = [rawClient(server.address, 1), rawClient(server.address, 2)];
  open.push(...clients);
  // Each connection's worker is current once a read through it answers.
  for (const client of clients) await rawGet(client, 'q/none');
  const messages = await firstMessages(clients);
  for (const first of messages) {
    expect(first).toMatchObject({ events: [], revision: current, progressIntervalMs: PROGRESS_MS });
    expect(first.historyId).toMatch(HEX16);
  }
});

test('an SDK watch that loses its stream after that first message resumes from it, not from a start the window has left', async () => {
  const dataDir = makeTempDir();
  const address = `127.0.0.1:${await freePort()}`;
  const args = ['--listen', address, '--watch-history-changes', '100', '--watch-progress-ms', String(PROGRESS_MS)];
  server = await startServer({ dataDir, args });
  const kv = new KvClient(address, { retry: { attempts: 5 } });
  open.push(kv);
  // Revisions 1..150: the window keeps 51..150.
  const current = await setMany(kv, 150);
  const seen: KvWatchEvent[] = [];
  const watch = kv.watch({ key: 'q/none', startRevision: 60 });
  open.push(watch);
  const done = (async () => {
    for await (const event of watch) seen.push(event);
  })().catch((error: unknown) => error);
  await pollUntil('the watch to be current', () => (watch.revision === current ? true : undefined), 3000);
  // 60 more: the window keeps 111..210, past the start asked for (60) but not past where the watch got to (150).
  await setMany(kv, 60);
  await server.kill();
  server = await startServer({ dataDir, args });
  await pollUntil(
    'the channel to reconnect',
    () =>
      kv.get('q/k0').then(
        () => true,
        () => undefined,
      ),
    20_000,
  );
  const written = await kv.set('q/none', 'hello');
  await pollUntil('the change', () => (seen.length > 0 ? true : undefined), 20_000);
  expect(seen.map((e) => [e.type, e.key, e.revision])).toEqual([['put', 'q/none', written]]);
  watch.close();
  expect(await done).toBeUndefined();
});
