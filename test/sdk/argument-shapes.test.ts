/**
 * Plain JavaScript (or `any`) can hand the SDK a string where an options
 * object goes, an options object with a misspelt or mistyped field, or an
 * object where a string goes. Each is refused with one line, a KvError
 * INVALID_ARGUMENT, before anything is sent: `kv.clear('tmp/')` once sent
 * prefix "" and deleted every key, and `kv.keys('tmp/')` listed them all.
 */
import path from 'node:path';
import { Compare, credentials, KvClient, Op, status } from '@kv/client';
import { refusalOf, serverWithClient, storedKeys } from '../support/sdk-fixture';
import { makeTempDir } from '../support/temp-dirs';

const fixture = serverWithClient();
const SEEDED = ['keep/a', 'tmp/a', 'tmp/b'];

/** What the call `name` fails with, whether it throws or rejects; a call that is not refused fails the test. */
async function refusal(name: string, run: () => unknown): Promise<{ name: string; code: status; reason: string; message: string }> {
  const error = await refusalOf(name, run);
  return { name, code: error.code, reason: error.reason, message: error.message };
}

/** The SDK as plain JavaScript sees it: any argument goes. */
function untyped(kv: KvClient): Record<string, (...args: unknown[]) => unknown> {
  return kv as unknown as Record<string, (...args: unknown[]) => unknown>;
}

beforeEach(async () => {
  await fixture.kv.clear();
  for (const key of SEEDED) await fixture.kv.set(key, 1);
});

const INVALID = { code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' };

test('a string where an options object goes is refused, and nothing is cleared, listed or written', async () => {
  const kv = untyped(fixture.kv);
  const calls: [string, () => unknown][] = [
    ['clear', () => kv.clear('tmp/')],
    ['keys', () => (kv.keys('tmp/') as AsyncGenerator).next()],
    ['entries', () => (kv.entries('tmp/') as AsyncGenerator).next()],
    ['listPage', () => kv.listPage('tmp/')],
    ['listKeysPage', () => kv.listKeysPage('tmp/')],
    ['leases', () => (kv.leases('tmp/') as AsyncGenerator).next()],
    ['listLeasesPage', () => kv.listLeasesPage('tmp/')],
    ['watch', () => kv.watch('tmp/')],
    ['get', () => kv.get('tmp/a', 'tmp/')],
    ['set', () => kv.set('tmp/a', 2, 'tmp/')],
    ['update', () => kv.update('tmp/a', { b: 1 }, 'tmp/')],
    ['delete', () => kv.delete('tmp/a', 'tmp/')],
    ['grantLease', () => kv.grantLease(1000, 'tmp/')],
    ['revokeLease', () => kv.revokeLease(1, 'tmp/')],
    ['leaseInfo', () => kv.leaseInfo(1, 'tmp/')],
    ['txn', () => kv.txn('tmp/')],
    ['health', () => kv.health('tmp/')],
    ['backup', () => kv.backup(path.join(makeTempDir('kv-shapes-'), 'b.kvbackup'), 'tmp/')],
    ['Op.set', () => (Op.set as (...args: unknown[]) => unknown)('tmp/a', 1, 'tmp/')],
    ['Op.update', () => (Op.update as (...args: unknown[]) => unknown)('tmp/a', {}, 'tmp/')],
  ];
  for (const [name, call] of calls) {
    expect(await refusal(name, call)).toEqual({
      name,
      ...INVALID,
      message: expect.stringMatching(/ must be an object \([^\n]*\), got a string \("tmp\/"\)$/),
    });
  }
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);
});

test('a number, an array, a boolean or null where an options object goes is refused too', async () => {
  const kv = untyped(fixture.kv);
  for (const [bad, got] of [
    [5, 'a number (5)'],
    [['tmp/'], 'an array'],
    [true, 'a boolean (true)'],
    [null, 'null'],
  ] as const) {
    for (const [name, call] of [
      ['clear', () => kv.clear(bad)],
      ['keys', () => (kv.keys(bad) as AsyncGenerator).next()],
      ['listPage', () => kv.listPage(bad)],
      ['delete', () => kv.delete('tmp/a', bad)],
      ['set', () => kv.set('tmp/a', 2, bad)],
      ['watch', () => kv.watch(bad)],
    ] as const) {
      expect(await refusal(name, call)).toEqual({ name, ...INVALID, message: expect.stringContaining(`, got ${got}`) });
    }
  }
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);
});

test('clear() and clear({}) clear every key, as documented; clear(undefined) and a prefix that is undefined or null are refused', async () => {
  const kv = untyped(fixture.kv);
  // The SDK's types refuse it too (npm run typecheck holds the next line to that); at run time it is refused all the same.
  // @ts-expect-error clear's argument, when there is one, is an object
  const clearUndefined = (): Promise<number> => fixture.kv.clear(undefined);
  expect(await refusal('clear(undefined)', clearUndefined)).toEqual({
    name: 'clear(undefined)',
    ...INVALID,
    message: expect.stringMatching(/^clear was given undefined: .*clear\(\) with no argument/),
  });
  for (const options of [{ prefix: undefined }, { prefix: null }, { prefix: undefined, deadlineMs: 1000 }]) {
    expect(await refusal('clear', () => kv.clear(options))).toEqual({
      name: 'clear',
      ...INVALID,
      message: expect.stringMatching(/^clear: prefix is (undefined|null): /),
    });
  }
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);

  expect(await fixture.kv.clear({ prefix: 'tmp/' })).toBe(2);
  expect(await storedKeys(fixture.kv)).toEqual(['keep/a']);
  expect(await fixture.kv.clear()).toBe(1);
  await fixture.kv.set('again', 1);
  expect(await fixture.kv.clear({})).toBe(1);
  await fixture.kv.set('again', 1);
  expect(await fixture.kv.clear({ prefix: '', deadlineMs: 5000 })).toBe(1);
  expect(await storedKeys(fixture.kv)).toEqual([]);
});

test('an options object with a misspelt field is refused, naming the field and the ones there are', async () => {
  const kv = untyped(fixture.kv);
  const calls: [string, () => unknown][] = [
    ['clear', () => kv.clear({ prefx: 'tmp/' })],
    ['keys', () => (kv.keys({ Prefix: 'tmp/' }) as AsyncGenerator).next()],
    ['entries', () => (kv.entries({ prefix: 'tmp/', page_size: 1 }) as AsyncGenerator).next()],
    ['listPage', () => kv.listPage({ prefix: 'tmp/', token: 'x' })],
    ['set', () => kv.set('tmp/a', 2, { expectedRevison: 1 })],
    ['update', () => kv.update('tmp/a', { b: 1 }, { createIfMising: true })],
    ['delete', () => kv.delete('tmp/a', { revision: 1 })],
    ['get', () => kv.get('tmp/a', { deadline: 1000 })],
    ['watch', () => kv.watch({ prefix: 'tmp/', startRev: 1 })],
    ['leaseInfo', () => kv.leaseInfo(1, { withKeys: true })],
    ['Op.set', () => (Op.set as (...args: unknown[]) => unknown)('tmp/a', 1, { ttl: 1000 })],
    ['KvClient', () => new KvClient(fixture.server.address, { deadline: 1000 } as never)],
  ];
  for (const [name, call] of calls) {
    expect(await refusal(name, call)).toEqual({
      name,
      ...INVALID,
      message: expect.stringMatching(/ has no option "\w+" \(its options: [^\n]+\)$/),
    });
  }
  expect((await refusal('clear', () => kv.clear({ prefx: 'tmp/' }))).message).toBe(
    'clear has no option "prefx" (its options: prefix, deadlineMs)',
  );
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);
});

test('a field of the wrong type is refused, naming it', async () => {
  const kv = untyped(fixture.kv);
  const calls: [string, () => unknown, RegExp][] = [
    ['clear prefix', () => kv.clear({ prefix: ['tmp/'] }), /^prefix must be a string, got an array$/],
    ['keys prefix', () => (kv.keys({ prefix: 5 }) as AsyncGenerator).next(), /^prefix must be a string, got a number \(5\)$/],
    ['listPage pageToken', () => kv.listPage({ pageToken: 5 }), /^pageToken must be a string, got a number \(5\)$/],
    [
      'get deadlineMs',
      () => kv.get('tmp/a', { deadlineMs: '1000' }),
      /^deadlineMs must be a whole number from 1 to \d+, got a string \("1000"\)$/,
    ],
    ['update createIfMissing', () => kv.update('n/k', { b: 1 }, { createIfMissing: 'yes' }), /^createIfMissing must be true or false/],
    ['leaseInfo keys', () => kv.leaseInfo(1, { keys: 'yes' }), /^keys must be true or false/],
    ['watch prevEntry', () => kv.watch({ prefix: 'tmp/', prevEntry: 1 }), /^prevEntry must be true or false/],
    ['watch idleTimeoutMs', () => kv.watch({ prefix: 'tmp/', idleTimeoutMs: 2 ** 31 }), /^idleTimeoutMs must be a whole number/],
    ['watch reconnectAttempts', () => kv.watch({ prefix: 'tmp/', reconnectAttempts: '3' }), /^reconnectAttempts must be a whole number/],
    ['watch onResume', () => kv.watch({ prefix: 'tmp/', onResume: 'log' }), /^onResume must be a function, got a string/],
    [
      'backup onProgress',
      () => kv.backup(path.join(makeTempDir('kv-shapes-'), 'b'), { onProgress: true }),
      /^onProgress must be a function/,
    ],
    ['backup destination', () => kv.backup({ path: 'b.kvbackup' }), /^backup destination must be a file path or a writable stream/],
    ['keepAlive', () => kv.keepAlive('1'), /^keepAlive takes a lease id or what grantLease returned \(\{ id, ttlMs \}\), got a string/],
    ['keepAlive null', () => kv.keepAlive(null), /^keepAlive takes a lease id .*, got null$/],
  ];
  for (const [name, call, message] of calls) {
    expect(await refusal(name, call)).toEqual({
      name,
      code: status.INVALID_ARGUMENT,
      reason: expect.any(String),
      message: expect.stringMatching(message),
    });
  }
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);
});

test('the client options are checked when the client is made', () => {
  const address = fixture.server.address;
  const made =
    (options: unknown): (() => KvClient) =>
    () =>
      new KvClient(address, options as never);
  expect(made('secret')).toThrow(/^KvClient options must be an object \(.*\), got a string \("secret"\)$/);
  expect(made({ token: 123 })).toThrow(/^token must be a string, got a number \(123\)$/);
  expect(made({ deadlineMs: '5000' })).toThrow(/^deadlineMs must be a whole number/);
  expect(made({ retry: 3 })).toThrow(/^retry must be an object \(attempts, initialBackoffMs, maxBackoffMs\), got a number \(3\)$/);
  expect(made({ retry: { attempt: 3 } })).toThrow(/^retry has no option "attempt"/);
  expect(made({ retry: { attempts: 0 } })).toThrow(/^attempts must be a whole number from 1/);
  expect(made({ credentials: 'tls' })).toThrow(/^credentials must be channel credentials .*, got a string \("tls"\)$/);
  expect(made({ channelOptions: 'x' })).toThrow(/^channelOptions must be an object/);
  expect(made({ insecure: 'yes' })).toThrow(/^insecure must be true or false/);
  expect(() => new KvClient(5 as never)).toThrow(/^address must be host:port or a list of them, got a number \(5\)$/);
  expect(() => new KvClient([address, 5] as never)).toThrow(
    /^address must be host:port or a list of them, got a number \(5\) in the list$/,
  );
  // What stays allowed: a field given as undefined is a field left out, and retries without a limit.
  const kv = new KvClient(address, { token: undefined, deadlineMs: undefined, retry: { attempts: Infinity } });
  kv.close();
});

test('Compare needs one of its four operators, and a transaction takes only what Compare and Op build', async () => {
  const compare = Compare.modRevision as (...args: unknown[]) => unknown;
  for (const op of ['=', '===', '<=', 'eq', 0]) {
    expect(await refusal(`Compare ${String(op)}`, () => compare('tmp/a', op, 0))).toEqual({
      name: `Compare ${String(op)}`,
      ...INVALID,
      message: `compare operator must be one of '==', '!=', '<', '>', got ${typeof op === 'string' ? `a string ("${op}")` : 'a number (0)'}`,
    });
  }
  const txn = (): Record<string, (...args: unknown[]) => unknown> => fixture.kv.txn() as never;
  expect(await refusal('if a string', () => txn().if('tmp/a'))).toEqual({
    name: 'if a string',
    ...INVALID,
    message: 'txn().if takes compares built with Compare (e.g. Compare.modRevision(key, \'==\', 0)), got a string ("tmp/a")',
  });
  expect(await refusal('then a compare', () => txn().then(Compare.version('tmp/a', '>', 0)))).toEqual({
    name: 'then a compare',
    ...INVALID,
    message: 'txn().then takes ops built with Op (e.g. Op.set(key, value)), got a compare',
  });
  expect(await refusal('else a raw op', () => txn().else({ clear: { prefix: '' } }))).toEqual({
    name: 'else a raw op',
    ...INVALID,
    message: expect.stringMatching(/^txn\(\)\.else takes ops built with Op .*, got an object that Op did not build$/),
  });
  expect(await refusal('if an op', () => txn().if(Op.clear('')))).toEqual({
    name: 'if an op',
    ...INVALID,
    message: expect.stringMatching(/^txn\(\)\.if takes compares built with Compare .*, got an op$/),
  });
  // A builder awaited rather than committed: `await` calls its then(resolve, reject).
  expect(await refusal('awaited', async () => await (fixture.kv.txn().if(Compare.version('tmp/a', '>', 0)) as unknown))).toEqual({
    name: 'awaited',
    ...INVALID,
    message: 'a transaction runs on commit(): await kv.txn().if(...).then(...).else(...).commit(), not the builder itself',
  });
  expect(await storedKeys(fixture.kv)).toEqual(SEEDED);
  // What Compare and Op build still commits.
  const done = await fixture.kv
    .txn()
    .if(Compare.modRevision('tmp/a', '>', 0))
    .then(Op.clear('tmp/'))
    .commit();
  expect(done.succeeded).toBe(true);
  expect(await storedKeys(fixture.kv)).toEqual(['keep/a']);
});

test('TLS credentials are accepted as credentials (not taken for a mistyped field)', () => {
  new KvClient('192.0.2.1:50051', { credentials: credentials.createSsl() }).close();
});
