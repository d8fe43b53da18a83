/**
 * An answer larger than the client's own receive limit is its own error,
 * RESPONSE_TOO_LARGE, saying so (and, for a write, that it may have been applied),
 * not TOO_LARGE, which says the request was refused. The limit is a client
 * option; a small one here stands for the default 64 MiB.
 */
import { KvClient, Op, status } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

const LIMIT = 1024 * 1024;

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { deadlineMs: 10_000 });
  // Four values of 300 kB: one page of them is over 1 MiB, each alone under it.
  for (const key of ['big/a', 'big/b', 'big/c', 'big/d']) await kv.set(key, 'x'.repeat(300_000));
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

const limited = (): KvClient[] => [
  new KvClient(server.address, { maxReceiveMessageBytes: LIMIT }),
  new KvClient(server.address, { channelOptions: { 'grpc.max_receive_message_length': LIMIT } }),
];

test('a List page over the receive limit is RESPONSE_TOO_LARGE, naming the sizes and the option that raises the limit, and no write', async () => {
  for (const client of limited()) {
    try {
      await expect(client.get('big/a')).resolves.toMatchObject({ key: 'big/a' });
      const error = await client.listPage({ prefix: 'big/' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({
        code: status.RESOURCE_EXHAUSTED,
        reason: 'RESPONSE_TOO_LARGE',
        message: expect.stringMatching(
          new RegExp(
            `^the answer \\(\\d+ bytes\\) is larger than this client's receive limit \\(${LIMIT} bytes\\).*maxReceiveMessageBytes`,
          ),
        ),
      });
      // A read: nothing to say of writes.
      expect((error as Error).message).not.toContain('applied');
    } finally {
      client.close();
    }
  }
});

test('a Txn whose results are over the limit says its writes may have been applied, and they were', async () => {
  const [client, other] = limited();
  other.close();
  try {
    const error = await client
      .txn()
      .then(Op.set('big/written', 1), Op.get('big/a'), Op.get('big/b'), Op.get('big/c'), Op.get('big/d'))
      .commit()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({
      reason: 'RESPONSE_TOO_LARGE',
      message: expect.stringContaining('a write (a Txn, an Update) may have been applied'),
    });
    expect((await kv.get('big/written'))?.value).toBe(1);
  } finally {
    client.close();
  }
});

test('a Watch message over the receive limit says so, without asking for a smaller page or range it has not got', async () => {
  const client = new KvClient(server.address, { maxReceiveMessageBytes: 200_000 });
  try {
    const watch = client.watch({ key: 'big/a', startRevision: 1 });
    const error = await (async () => {
      for await (const event of watch) throw new Error(`an event came: ${event.key}`);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: status.RESOURCE_EXHAUSTED, reason: 'RESPONSE_TOO_LARGE' });
    expect((error as Error).message).toMatch(
      /^the answer \(\d+ bytes\) is larger than this client's receive limit \(200000 bytes\): raise the limit with the KvClient option maxReceiveMessageBytes \(a Watch or Backup message holds about 1 MiB of entries, or one larger entry whole\)$/,
    );
  } finally {
    client.close();
  }
});

test("a request over the server's limit is still TOO_LARGE: the server refused it", async () => {
  const [client, other] = limited();
  other.close();
  try {
    await expect(client.set('big/huge', 'x'.repeat(20 * 1024 * 1024))).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      reason: 'TOO_LARGE',
    });
  } finally {
    client.close();
  }
});

test('maxReceiveMessageBytes must be a whole number of bytes', () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    expect(() => new KvClient(server.address, { maxReceiveMessageBytes: bad })).toThrow(
      expect.objectContaining({ reason: 'INVALID_ARGUMENT' }) as Error,
    );
  }
});
