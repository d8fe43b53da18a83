import { freePort } from '../support/free-port';
/**
 * Watch through the real server: the wire (raw grpc-js stream and the
 * generated decoder), errors with their trailers, shutdown, and the SDK's
 * watch resuming exactly once across a SIGKILLed server and a SIGSTOPped one.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KvClient, KvError, type KvWatchEvent } from '@kv/client';
import { EventType, KeyValueServiceClient, type WatchRequest, type WatchResponse } from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

/** Opens a raw Watch stream; collects messages and the final error. */
function rawWatch(address: string, request: Partial<WatchRequest>) {
  const client = new KeyValueServiceClient(address, credentials.createInsecure());
  const messages: WatchResponse[] = [];
  let error: ServiceError | undefined;
  let ended = false;
  const call = client.watch({ startRevision: 0, prevEntry: false, fragment: false, ...request }, new Metadata());
  call.on('data', (m: WatchResponse) => messages.push(m));
  call.on('error', (e: ServiceError) => {
    error = e;
    ended = true;
  });
  call.on('end', () => {
    ended = true;
  });
  return {
    messages,
    error: () => error,
    ended: () => ended,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** Takes events from an SDK watch into `seen` until stopped. */
function consume(watch: AsyncIterable<KvWatchEvent>, seen: KvWatchEvent[]): Promise<unknown> {
  return (async () => {
    try {
      for await (const event of watch) seen.push(event);
    } catch (error) {
      return error;
    }
    return undefined;
  })();
}

describe('one server', () => {
  let server: RunningServer;
  let kv: KvClient;
  beforeAll(async () => {
    server = await startServer({ args: ['--watch-history-changes', '20', '--watch-progress-ms', '200'] });
    kv = new KvClient(server.address, { retry: { attempts: 1 } });
  });
  afterAll(async () => {
    kv.close();
    expect(await server.stop()).toBe(0);
  });

  test('the stream carries events with entries, deletes with their revision, previous entries, and progress', async () => {
    const base = (await kv.set('w1/seed', 0)) + 1;
    const watch = rawWatch(server.address, { prefix: 'w1/', prevEntry: true });
    // Progress first (nothing to send): proves the stream is open before writing.
    await pollUntil('a progress message', () => (watch.messages.length > 0 ? true : undefined));
    // The first message also says how often progress comes (--watch-progress-ms), and the store's history id.
    expect(watch.messages[0]).toEqual({
      events: [],
      revision: base - 1,
      fragment: false,
      progressIntervalMs: 200,
      historyId: expect.stringMatching(/^[0-9a-f]{16}$/) as string,
    });
    await kv.set('w1/a', { n: 1, __proto__x: [true, null] });
    await kv.set('w1/a', 'two');
    await kv.delete('w1/a');
    await kv.set('w1/b', 1);
    await kv.clear({ prefix: 'w1/' });
    await pollUntil('events up to the clear', () => (watch.messages.at(-1)?.revision === base + 4 ? true : undefined));
    const events = watch.messages.flatMap((m) => m.events);
    expect(events.map((e) => [e.type, e.entry?.key, e.entry?.modRevision, e.entry?.value, e.prevEntry?.value])).toEqual([
      [EventType.EVENT_TYPE_PUT, 'w1/a', base, { n: 1, __proto__x: [true, null] }, undefined],
      [EventType.EVENT_TYPE_PUT, 'w1/a', base + 1, 'two', { n: 1, __proto__x: [true, null] }],
      [EventType.EVENT_TYPE_DELETE, 'w1/a', base + 2, undefined, 'two'],
      [EventType.EVENT_TYPE_PUT, 'w1/b', base + 3, 1, undefined],
      [EventType.EVENT_TYPE_DELETE, 'w1/b', base + 4, undefined, 1],
      [EventType.EVENT_TYPE_DELETE, 'w1/seed', base + 4, undefined, 0],
    ]);
    expect(events[1].entry).toMatchObject({ createRevision: base, version: 2 });
    // Only the first message says how often progress comes, and the history id.
    expect(watch.messages.slice(1).map((m) => [m.progressIntervalMs, m.historyId])).toEqual(watch.messages.slice(1).map(() => [0, '']));
    watch.close();
  });

  test('a start revision older than the window is OUT_OF_RANGE naming the oldest revision in a trailer', async () => {
    for (let i = 0; i < 30; i++) await kv.set('w2/k', i);
    const watch = rawWatch(server.address, { key: 'w2/k', startRevision: 1 });
    await pollUntil('the error', () => watch.error());
    const error = watch.error() as ServiceError;
    expect(error.code).toBe(status.OUT_OF_RANGE);
    expect(error.metadata.get('kv-reason')).toEqual(['COMPACTED']);
    const oldest = Number(error.metadata.get('kv-oldest-revision')[0]);
    expect(oldest).toBeGreaterThan(1);
    expect(error.details).toContain(`oldest revision available: ${oldest}`);
    watch.close();
    // The SDK surfaces it as a typed error.
    const sdkError = await consume(kv.watch({ key: 'w2/k', startRevision: 1 }), []);
    expect(sdkError).toBeInstanceOf(KvError);
    expect(sdkError).toMatchObject({ reason: 'COMPACTED', code: status.OUT_OF_RANGE, oldestRevision: oldest });
  });

  test('bad requests are INVALID_ARGUMENT', async () => {
    for (const request of [{}, { key: '' }, { prefix: 'a', startRevision: -1 }]) {
      const watch = rawWatch(server.address, request);
      await pollUntil('the error', () => watch.error());
      expect(watch.error()?.code).toBe(status.INVALID_ARGUMENT);
      watch.close();
    }
  });

  test('an SDK watch sees every change once, in order, and breaking out of the loop cancels the call', async () => {
    const start = (await kv.set('w3/x', 0)) + 1;
    const seen: KvWatchEvent[] = [];
    const watch = kv.watch({ prefix: 'w3/', startRevision: start });
    const writes = (async () => {
      for (let i = 1; i <= 20; i++) await kv.set(`w3/${i % 3}`, i);
    })();
    for await (const event of watch) {
      seen.push(event);
      if (seen.length === 20) break;
    }
    await writes;
    expect(seen.map((e) => e.entry?.value)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(seen.map((e) => e.revision)).toEqual(Array.from({ length: 20 }, (_, i) => start + i));
  });
});

test('shutdown ends open watches with UNAVAILABLE at once instead of waiting out the grace period', async () => {
  const server = await startServer({ args: ['--shutdown-grace-ms', '30000'] });
  const watch = rawWatch(server.address, { prefix: '' });
  const kv = new KvClient(server.address);
  await kv.set('k', 1);
  await pollUntil('the event', () => (watch.messages.length > 0 ? true : undefined));
  kv.close();
  const started = Date.now();
  expect(await server.stop()).toBe(0);
  expect(Date.now() - started).toBeLessThan(10_000);
  await pollUntil('the stream to end', () => (watch.ended() ? true : undefined));
  expect(watch.error()?.code).toBe(status.UNAVAILABLE);
  expect(watch.error()?.metadata.get('kv-reason')).toEqual(['CLOSED']);
  watch.close();
});

test('the SDK watch resumes across a SIGKILLed and restarted server: each change exactly once', async () => {
  const dataDir = makeTempDir();
  const address = `127.0.0.1:${await freePort()}`;
  let server = await startServer({ dataDir, args: ['--listen', address] });
  const kv = new KvClient(address, { retry: { attempts: 5 } });
  const seen: KvWatchEvent[] = [];
  const watch = kv.watch({ prefix: 'r/', startRevision: 1 });
  const done = consume(watch, seen);
  try {
    for (let i = 1; i <= 10; i++) await kv.set(`r/${i}`, i);
    await pollUntil('the first ten', () => (seen.length >= 10 ? true : undefined));
    const historyId = watch.historyId;
    expect(historyId).toMatch(/^[0-9a-f]{16}$/);
    await server.kill();
    server = await startServer({ dataDir, args: ['--listen', address] });
    // Writes are never retried by the SDK: wait until the channel has reconnected.
    await pollUntil(
      'the channel to reconnect',
      () =>
        kv.get('r/1').then(
          () => true,
          () => undefined,
        ),
      20_000,
    );
    for (let i = 11; i <= 20; i++) await kv.set(`r/${i}`, i);
    await pollUntil('all twenty', () => (seen.length >= 20 ? true : undefined), 30_000);
    expect(seen.map((e) => e.revision)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(watch.reconnectCount).toBeGreaterThanOrEqual(1);
    // With --fsync always a change is published only once durable: the history survives the crash, its id too.
    expect(watch.historyId).toBe(historyId);
  } finally {
    watch.close();
    await done;
    kv.close();
    await server.stop();
  }
});

test('the SDK watch does not go silently dead on a SIGSTOPped server: it notices the silence, resumes, and misses nothing', async () => {
  const server = await startServer({ args: ['--watch-progress-ms', '200'] });
  const kv = new KvClient(server.address);
  const seen: KvWatchEvent[] = [];
  const watch = kv.watch({ prefix: 's/', idleTimeoutMs: 600 });
  const done = consume(watch, seen);
  try {
    await kv.set('s/1', 1);
    await pollUntil('the first event', () => (seen.length === 1 ? true : undefined));
    server.child.kill('SIGSTOP');
    // Longer than the idle timeout: the SDK gives up on the silent stream and tries a new one.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    server.child.kill('SIGCONT');
    await kv.set('s/2', 2);
    await kv.set('s/3', 3);
    await pollUntil('all three', () => (seen.length >= 3 ? true : undefined), 20_000);
    expect(seen.map((e) => e.key)).toEqual(['s/1', 's/2', 's/3']);
    expect(watch.reconnectCount).toBeGreaterThanOrEqual(1);
  } finally {
    server.child.kill('SIGCONT');
    watch.close();
    await done;
    kv.close();
    await server.stop();
  }
});

test('an SDK watch from now that loses its stream before any change resumes where it began, not from a later now', async () => {
  const dataDir = makeTempDir();
  const address = `127.0.0.1:${await freePort()}`;
  let server = await startServer({ dataDir, args: ['--listen', address] });
  const kv = new KvClient(address, { retry: { attempts: 5 } });
  const seen: KvWatchEvent[] = [];
  const began = await kv.set('n/seed', 0);
  const watch = kv.watch({ prefix: 'n/' });
  const done = consume(watch, seen);
  try {
    // The server's first message says where the watch starts, at once (well before the first progress, 5 s).
    await pollUntil('the watch to start', () => (watch.revision === began ? true : undefined), 2000);
    await server.kill();
    server = await startServer({ dataDir, args: ['--listen', address] });
    await pollUntil(
      'the channel to reconnect',
      () =>
        kv.get('n/seed').then(
          () => true,
          () => undefined,
        ),
      20_000,
    );
    // Written while the watch still waits to reconnect: "now" has moved past them by then.
    const revisions: number[] = [];
    for (let i = 1; i <= 10; i++) revisions.push(await kv.set(`n/${i}`, i));
    await pollUntil('all ten', () => (seen.length >= 10 ? true : undefined), 30_000);
    expect(seen.map((e) => e.revision)).toEqual(revisions);
  } finally {
    watch.close();
    await done;
    kv.close();
    await server.stop();
  }
});

test('closing the client ends its watches; the loop ends without an error', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address);
  const seen: KvWatchEvent[] = [];
  const watch = kv.watch({ prefix: 'c/' });
  const done = consume(watch, seen);
  try {
    await kv.set('c/1', 1);
    await pollUntil('the event', () => (seen.length === 1 ? true : undefined));
    kv.close();
    expect(await done).toBeUndefined();
  } finally {
    kv.close();
    await server.stop();
  }
});

test('time the consumer takes over an event is not silence: the SDK does not drop a healthy stream for it', async () => {
  const server = await startServer({ args: ['--watch-progress-ms', '5000'] });
  const kv = new KvClient(server.address);
  await kv.set('seed', 0);
  const watch = kv.watch({ prefix: 'slow/', idleTimeoutMs: 500 });
  const seen: string[] = [];
  let tookTheFirst: () => void = () => undefined;
  const firstTaken = new Promise<void>((resolve) => (tookTheFirst = resolve));
  const done = (async () => {
    for await (const event of watch) {
      seen.push(event.key);
      if (seen.length === 1) {
        // Three idle timeouts on one event, while the server has nothing more to send.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        tookTheFirst();
      }
      if (seen.length === 3) break;
    }
  })();
  try {
    await pollUntil('the watch to start', () => (watch.revision > 0 ? true : undefined));
    await kv.set('slow/1', 1);
    await firstTaken;
    await kv.set('slow/2', 2);
    await kv.set('slow/3', 3);
    await done;
    expect(seen).toEqual(['slow/1', 'slow/2', 'slow/3']);
    expect(watch.reconnectCount).toBe(0);
  } finally {
    kv.close();
    await server.stop();
  }
});

test('an event too large for the client to receive ends the SDK watch with a KvError instead of a retry loop', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address);
  // Fragments split a revision between events, never an event: one of 2 × 600 kB (with its previous entry) is over 1 MiB.
  const limited = new KvClient(server.address, { maxReceiveMessageBytes: 1024 * 1024 });
  try {
    await kv.set('big', 'x'.repeat(600_000));
    const watch = limited.watch({ key: 'big', prevEntry: true });
    const failed = consume(watch, []);
    await pollUntil('the watch to start', () => (watch.revision > 0 ? true : undefined));
    await kv.set('big', 'y'.repeat(600_000));
    const error = await failed;
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({ code: status.RESOURCE_EXHAUSTED, reason: 'RESPONSE_TOO_LARGE' });
    expect(watch.reconnectCount).toBe(0);
  } finally {
    limited.close();
    kv.close();
    await server.stop();
  }
});

describe('fragments: a revision larger than a message', () => {
  let server: RunningServer;
  let kv: KvClient;
  let cleared: number;
  const KEYS = Array.from({ length: 12 }, (_, i) => `frag/${String(i).padStart(2, '0')}`);
  beforeAll(async () => {
    server = await startServer();
    kv = new KvClient(server.address);
    // Twelve values of 300 kB cleared at once: with previous entries, one revision of about 3.6 MB.
    for (const key of KEYS) await kv.set(key, 'x'.repeat(300_000));
    await kv.clear({ prefix: 'frag/' });
    cleared = (await kv.set('frag/after', 1)) - 1;
  });
  afterAll(async () => {
    kv.close();
    expect(await server.stop()).toBe(0);
  });

  async function messagesOf(request: Partial<WatchRequest>): Promise<WatchResponse[]> {
    const watch = rawWatch(server.address, { prefix: 'frag/', startRevision: cleared, prevEntry: true, ...request });
    try {
      await pollUntil('every event', () => (watch.messages.flatMap((m) => m.events).length >= KEYS.length + 1 ? true : undefined));
      return watch.messages;
    } finally {
      watch.close();
    }
  }

  test('asked for, the revision comes in messages of about 1 MiB, each but the last a fragment; not asked for, in one', async () => {
    const whole = await messagesOf({ fragment: false });
    expect(whole[0].events.map((e) => e.entry?.key)).toEqual(KEYS);
    expect(whole[0]).toMatchObject({ revision: cleared, fragment: false, progressIntervalMs: 5000 });

    const split = await messagesOf({ fragment: true });
    const ofClear = split.filter((m) => m.events.some((e) => e.entry?.modRevision === cleared));
    // 300 kB events: three fit in 1 MiB, so at least four messages.
    expect(ofClear.length).toBeGreaterThanOrEqual(4);
    expect(ofClear.every((m) => m.events.length <= 3 && m.events.every((e) => e.entry?.modRevision === cleared))).toBe(true);
    expect(ofClear.map((m) => [m.revision, m.fragment])).toEqual([...ofClear.slice(1).map(() => [cleared, true]), [cleared, false]]);
    // The first fragment says how often progress comes, and only it.
    expect(split.map((m) => m.progressIntervalMs)).toEqual(split.map((_, i) => (i === 0 ? 5000 : 0)));
    // The same events, the same order, their previous entries whole.
    expect(ofClear.flatMap((m) => m.events)).toEqual(whole[0].events);
    expect(split.flatMap((m) => m.events).map((e) => e.entry?.key)).toEqual([...KEYS, 'frag/after']);
  });

  test('the SDK asks for fragments: a client with a 1 MiB receive limit gets every event once, and a break inside the revision resumes past what it had', async () => {
    const limited = new KvClient(server.address, { maxReceiveMessageBytes: 1024 * 1024 });
    try {
      const watch = limited.watch({ prefix: 'frag/', startRevision: cleared, prevEntry: true });
      const seen: KvWatchEvent[] = [];
      for await (const event of watch) {
        seen.push(event);
        if (seen.length === 5) break;
      }
      // Iterated again, the watch goes on on a new stream, from the middle of the split revision.
      for await (const event of watch) {
        seen.push(event);
        if (seen.length === KEYS.length + 1) break;
      }
      expect(seen.map((e) => `${e.type} ${e.key} ${e.revision} ${JSON.stringify(e.prev?.value ?? null).length}`)).toEqual([
        ...KEYS.map((key) => `delete ${key} ${cleared} 300002`),
        `put frag/after ${cleared + 1} 4`,
      ]);
    } finally {
      limited.close();
    }
  });
});
