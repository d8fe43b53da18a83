/**
 * Arguments the SDK cannot send as given are refused with a KvError before
 * anything is sent, never changed on the way: the server afterwards holds
 * nothing any of them would have written.
 */
import { Compare, KvClient, KvError, Op, status } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { deadlineMs: 5000 });
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

/** The KvError the call `name` fails with, whether it throws or rejects. */
async function refusal(name: string, run: () => unknown): Promise<KvError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
  throw new Error(`${name} was not refused`);
}

async function storedKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of kv.keys()) keys.push(key);
  return keys;
}

describe('strings that are not valid Unicode (a lone surrogate)', () => {
  const bad = 'u/bad\uD800';

  test('as a key, a prefix or a watched key: INVALID_KEY, for every call that takes one', async () => {
    const calls: [string, () => unknown][] = [
      ['set', () => kv.set(bad, 1)],
      ['get', () => kv.get(bad)],
      ['delete', () => kv.delete(bad)],
      ['update', () => kv.update(bad, { a: 1 }, { createIfMissing: true })],
      ['clear', () => kv.clear({ prefix: bad })],
      ['listKeysPage', () => kv.listKeysPage({ prefix: bad })],
      ['listPage', () => kv.listPage({ prefix: bad })],
      ['keys', () => kv.keys({ prefix: bad }).next()],
      ['entries', () => kv.entries({ prefix: bad }).next()],
      ['watch key', () => kv.watch({ key: bad })],
      ['watch prefix', () => kv.watch({ prefix: bad })],
      ['Op.get', () => Op.get(bad)],
      ['Op.set', () => Op.set(bad, 1)],
      ['Op.delete', () => Op.delete(bad)],
      ['Op.clear', () => Op.clear(bad)],
      ['Op.update', () => Op.update(bad, {})],
      ['Compare.modRevision', () => Compare.modRevision(bad, '==', 0)],
      ['Compare.value', () => Compare.value(bad, '==', 1)],
    ];
    for (const [name, call] of calls) {
      const error = await refusal(name, call);
      expect({ name, code: error.code, reason: error.reason, message: error.message }).toEqual({
        name,
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_KEY',
        message: expect.stringContaining('is not valid Unicode text (it has a lone surrogate)'),
      });
    }
    expect(await storedKeys()).toEqual([]);
  });

  test('in a value, a patch or a compare value, nested or as an object key: INVALID_VALUE', async () => {
    const values: unknown[] = ['x\uDC00y', ['ok', { deep: ['\uD800'] }], { '\uDC00': 1 }, { a: { ['b\uD83D']: null } }];
    for (const value of values) {
      for (const [name, call] of [
        ['set', () => kv.set('u/v', value as never)],
        ['update', () => kv.update('u/v', { a: value } as never, { createIfMissing: true })],
        ['Op.set', () => Op.set('u/v', value as never)],
        ['Op.update', () => Op.update('u/v', { a: value } as never)],
        ['Compare.value', () => Compare.value('u/v', '==', value as never)],
      ] as const) {
        const error = await refusal(name, call);
        expect({ name, value, code: error.code, reason: error.reason, message: error.message }).toEqual({
          name,
          value,
          code: status.INVALID_ARGUMENT,
          reason: 'INVALID_VALUE',
          message: expect.stringContaining('not valid Unicode text (it has a lone surrogate)'),
        });
      }
    }
    expect(await storedKeys()).toEqual([]);
  });

  test('a well-formed surrogate pair is text like any other and round-trips', async () => {
    await kv.set('u/emoji\uD83D\uDE00', { '\uD83D\uDE00': 'a\uD83D\uDE00b' });
    expect((await kv.get('u/emoji\uD83D\uDE00'))?.value).toEqual({ '\uD83D\uDE00': 'a\uD83D\uDE00b' });
    await kv.delete('u/emoji\uD83D\uDE00');
  });
});
