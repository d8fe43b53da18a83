/**
 * Arguments the SDK cannot send as given are refused with a KvError before
 * anything is sent, never changed on the way: the server afterwards holds
 * nothing any of them would have written.
 */
import { Compare, Op, status } from '@kv/client';
import { refusalOf, serverWithClient, storedKeys } from '../support/sdk-fixture';

const fixture = serverWithClient();

describe('strings that are not valid Unicode (a lone surrogate)', () => {
  const bad = 'u/bad\uD800';

  test('as a key, a prefix or a watched key: INVALID_KEY, for every call that takes one', async () => {
    const calls: [string, () => unknown][] = [
      ['set', () => fixture.kv.set(bad, 1)],
      ['get', () => fixture.kv.get(bad)],
      ['delete', () => fixture.kv.delete(bad)],
      ['update', () => fixture.kv.update(bad, { a: 1 }, { createIfMissing: true })],
      ['clear', () => fixture.kv.clear({ prefix: bad })],
      ['listKeysPage', () => fixture.kv.listKeysPage({ prefix: bad })],
      ['listPage', () => fixture.kv.listPage({ prefix: bad })],
      ['keys', () => fixture.kv.keys({ prefix: bad }).next()],
      ['entries', () => fixture.kv.entries({ prefix: bad }).next()],
      ['watch key', () => fixture.kv.watch({ key: bad })],
      ['watch prefix', () => fixture.kv.watch({ prefix: bad })],
      ['Op.get', () => Op.get(bad)],
      ['Op.set', () => Op.set(bad, 1)],
      ['Op.delete', () => Op.delete(bad)],
      ['Op.clear', () => Op.clear(bad)],
      ['Op.update', () => Op.update(bad, {})],
      ['Compare.modRevision', () => Compare.modRevision(bad, '==', 0)],
      ['Compare.value', () => Compare.value(bad, '==', 1)],
    ];
    for (const [name, call] of calls) {
      const error = await refusalOf(name, call);
      expect({ name, code: error.code, reason: error.reason, message: error.message }).toEqual({
        name,
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_KEY',
        message: expect.stringContaining('is not valid Unicode text (it has a lone surrogate)'),
      });
    }
    expect(await storedKeys(fixture.kv)).toEqual([]);
  });

  test('in a value, a patch or a compare value, nested or as an object key: INVALID_VALUE', async () => {
    const values: unknown[] = ['x\uDC00y', ['ok', { deep: ['\uD800'] }], { '\uDC00': 1 }, { a: { ['b\uD83D']: null } }];
    for (const value of values) {
      for (const [name, call] of [
        ['set', () => fixture.kv.set('u/v', value as never)],
        ['update', () => fixture.kv.update('u/v', { a: value } as never, { createIfMissing: true })],
        ['Op.set', () => Op.set('u/v', value as never)],
        ['Op.update', () => Op.update('u/v', { a: value } as never)],
        ['Compare.value', () => Compare.value('u/v', '==', value as never)],
      ] as const) {
        const error = await refusalOf(name, call);
        expect({ name, value, code: error.code, reason: error.reason, message: error.message }).toEqual({
          name,
          value,
          code: status.INVALID_ARGUMENT,
          reason: 'INVALID_VALUE',
          message: expect.stringContaining('not valid Unicode text (it has a lone surrogate)'),
        });
      }
    }
    expect(await storedKeys(fixture.kv)).toEqual([]);
  });

  test('a well-formed surrogate pair is text like any other and round-trips', async () => {
    await fixture.kv.set('u/emoji\uD83D\uDE00', { '\uD83D\uDE00': 'a\uD83D\uDE00b' });
    expect((await fixture.kv.get('u/emoji\uD83D\uDE00'))?.value).toEqual({ '\uD83D\uDE00': 'a\uD83D\uDE00b' });
    await fixture.kv.delete('u/emoji\uD83D\uDE00');
  });
});

describe('values that are not JSON', () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }
  const notJson: [string, unknown][] = [
    ['a bigint', 10n],
    ['a function in an object', { f: () => 1 }],
    ['a symbol in an array', [Symbol('s')]],
    ['undefined in an array', [1, undefined]],
    ['a hole in an array', [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set in an object', { s: new Set([1]) }],
    ['a class instance', new Point(1, 2)],
    ['a typed array', new Uint8Array([1])],
    ['NaN', NaN],
    ['Infinity in an object', { n: Infinity }],
    ['-Infinity in an array', [-Infinity]],
  ];

  test.each(notJson)('%s is INVALID_VALUE, as a value, a patch or a compare value, and nothing is sent', async (_, value) => {
    for (const [name, call] of [
      ['set', () => fixture.kv.set('j/v', value as never)],
      ['update', () => fixture.kv.update('j/v', { a: value } as never, { createIfMissing: true })],
      ['Op.set', () => Op.set('j/v', value as never)],
      ['Op.update', () => Op.update('j/v', { a: value } as never)],
      ['Compare.value', () => Compare.value('j/v', '==', value as never)],
    ] as const) {
      const error = await refusalOf(name, call);
      expect({ name, code: error.code, reason: error.reason, message: error.message }).toEqual({
        name,
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_VALUE',
        message: expect.stringMatching(/is not JSON/),
      });
    }
    expect(await storedKeys(fixture.kv)).toEqual([]);
  });

  test('the message names what is not JSON and where', async () => {
    expect((await refusalOf('set', () => fixture.kv.set('j/v', { a: [1, { when: new Date(0) }] } as never))).message).toBe(
      'value is not JSON: a Date at .a[1].when (JSON values are null, booleans, finite numbers, strings, arrays and plain objects)',
    );
    expect((await refusalOf('set', () => fixture.kv.set('j/v', 10n as never))).message).toBe(
      'value is not JSON: a bigint (JSON values are null, booleans, finite numbers, strings, arrays and plain objects)',
    );
    expect((await refusalOf('set', () => fixture.kv.set('j/v', { 'a b': ['ok', 'x\uDC00'] }))).message).toBe(
      'value has a string that is not valid Unicode text (it has a lone surrogate) at ["a b"][1]: "x\\udc00"',
    );
  });

  test('plain objects, null-prototype ones included, are JSON; a property that is undefined is left out, as JSON.stringify does', async () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    await fixture.kv.set('j/bare', { bare, skipped: undefined, kept: [null, -0, 'x'] } as never);
    expect((await fixture.kv.get('j/bare'))?.value).toEqual({ bare: { a: 1 }, kept: [null, 0, 'x'] });
    await fixture.kv.delete('j/bare');
  });
});

describe('numbers the server takes as whole numbers', () => {
  test.each([1.5, -1, NaN, Infinity, 2 ** 53])(
    '%p as a revision, a time to live, a lease id or a page size is INVALID_ARGUMENT',
    async (n) => {
      const calls: [string, () => unknown][] = [
        ['set expectedRevision', () => fixture.kv.set('n/k', 1, { expectedRevision: n })],
        ['set ttlMs', () => fixture.kv.set('n/k', 1, { ttlMs: n })],
        ['set lease', () => fixture.kv.set('n/k', 1, { lease: n })],
        ['update expectedRevision', () => fixture.kv.update('n/k', {}, { expectedRevision: n, createIfMissing: true })],
        ['delete expectedRevision', () => fixture.kv.delete('n/k', { expectedRevision: n })],
        ['grantLease', () => fixture.kv.grantLease(n)],
        ['revokeLease', () => fixture.kv.revokeLease(n)],
        ['leaseInfo', () => fixture.kv.leaseInfo(n)],
        ['keepAlive', () => fixture.kv.keepAlive(n)],
        ['keepAlive with a ttl', () => fixture.kv.keepAlive({ id: 1, ttlMs: n })],
        ['listKeysPage', () => fixture.kv.listKeysPage({ pageSize: n })],
        ['listPage', () => fixture.kv.listPage({ pageSize: n })],
        ['keys', () => fixture.kv.keys({ pageSize: n }).next()],
        ['watch startRevision', () => fixture.kv.watch({ prefix: 'n/', startRevision: n })],
        ['Op.set ttlMs', () => Op.set('n/k', 1, { ttlMs: n })],
        ['Op.set lease', () => Op.set('n/k', 1, { lease: n })],
      ];
      // A compare may ask "> -1"; a fraction or a non-finite number it cannot.
      if (n !== -1) {
        calls.push(
          ['Compare.modRevision', () => Compare.modRevision('n/k', '==', n)],
          ['Compare.createRevision', () => Compare.createRevision('n/k', '==', n)],
          ['Compare.version', () => Compare.version('n/k', '==', n)],
          ['Compare.lease', () => Compare.lease('n/k', '==', n)],
        );
      }
      for (const [name, call] of calls) {
        const error = await refusalOf(name, call);
        expect({ name, code: error.code, reason: error.reason, message: error.message }).toEqual({
          name,
          code: status.INVALID_ARGUMENT,
          reason: 'INVALID_ARGUMENT',
          message: expect.stringContaining(`must be a whole number`),
        });
      }
      expect(await storedKeys(fixture.kv)).toEqual([]);
    },
  );

  test('a time to live of 0 ("none" on the wire: a key or lease that never expires) is INVALID_ARGUMENT, from 1', async () => {
    const calls: [string, () => unknown][] = [
      ['set ttlMs', () => fixture.kv.set('n/k', 1, { ttlMs: 0 })],
      ['Op.set ttlMs', () => Op.set('n/k', 1, { ttlMs: 0 })],
      ['grantLease', () => fixture.kv.grantLease(0)],
      ['keepAlive with a ttl', () => fixture.kv.keepAlive({ id: 1, ttlMs: 0 })],
    ];
    for (const [name, call] of calls) {
      const error = await refusalOf(name, call);
      expect({ name, code: error.code, reason: error.reason, message: error.message }).toEqual({
        name,
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_ARGUMENT',
        message: `ttlMs must be a whole number from 1 to ${YEAR_MS}, got 0`,
      });
    }
    expect(await storedKeys(fixture.kv)).toEqual([]);
    const leases: unknown[] = [];
    for await (const lease of fixture.kv.leases()) leases.push(lease);
    expect(leases).toEqual([]);
  });

  test("a time to live past a year (the server's limit) is refused, naming that limit; a year is granted", async () => {
    const calls: [string, () => unknown][] = [
      ['set ttlMs', () => fixture.kv.set('n/k', 1, { ttlMs: YEAR_MS + 1 })],
      ['Op.set ttlMs', () => Op.set('n/k', 1, { ttlMs: YEAR_MS + 1 })],
      ['grantLease', () => fixture.kv.grantLease(YEAR_MS + 1)],
    ];
    for (const [name, call] of calls) {
      const error = await refusalOf(name, call);
      expect({ name, reason: error.reason, message: error.message }).toEqual({
        name,
        reason: 'INVALID_ARGUMENT',
        message: `ttlMs must be a whole number from 1 to ${YEAR_MS}, got ${YEAR_MS + 1}`,
      });
    }
    const lease = await fixture.kv.grantLease(YEAR_MS);
    expect(lease.ttlMs).toBe(YEAR_MS);
    await fixture.kv.revokeLease(lease.id);
  });

  test('a lease id of 0 (no lease) is refused by revokeLease, leaseInfo and keepAlive alike, from 1', async () => {
    const calls: [string, () => unknown][] = [
      ['revokeLease', () => fixture.kv.revokeLease(0)],
      ['leaseInfo', () => fixture.kv.leaseInfo(0)],
      ['keepAlive', () => fixture.kv.keepAlive(0)],
      ['keepAlive of a lease', () => fixture.kv.keepAlive({ id: 0, ttlMs: 1000 })],
    ];
    for (const [name, call] of calls) {
      const error = await refusalOf(name, call);
      expect({ name, reason: error.reason, message: error.message }).toEqual({
        name,
        reason: 'INVALID_ARGUMENT',
        message: `lease id must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got 0`,
      });
    }
  });

  test('leaseInfo leaves keys out unless asked for them: none asked for is not none attached', async () => {
    const lease = await fixture.kv.grantLease(60_000);
    await fixture.kv.set('n/leased', 1, { lease: lease.id });
    const info = await fixture.kv.leaseInfo(lease.id);
    expect(info).toEqual({ id: lease.id, ttlMs: 60_000, remainingMs: expect.any(Number) as unknown });
    expect(info && 'keys' in info).toBe(false);
    expect((await fixture.kv.leaseInfo(lease.id, { keys: true }))?.keys).toEqual(['n/leased']);
    await fixture.kv.revokeLease(lease.id);
  });
});

/** The longest time to live the server grants: a year. */
const YEAR_MS = 365 * 24 * 60 * 60 * 1000;
