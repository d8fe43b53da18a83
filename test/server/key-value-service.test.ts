import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KvClient, KvError, type JsonValue } from '@kv/client';
import { KeyValueServiceClient, type SetRequest, type SetResponse } from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer({ args: ['--max-key-bytes', '64', '--max-value-bytes', '1024'] });
  kv = new KvClient(server.address, { retry: { attempts: 1 } });
});

afterAll(async () => {
  kv.close();
  expect(await server.stop()).toBe(0);
});

beforeEach(async () => {
  await kv.clear();
});

async function rejection(promise: Promise<unknown>): Promise<KvError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('Get and Set', () => {
  test('set then get returns the value with etcd-style revisions', async () => {
    const first = await kv.set('user/1', { name: 'Ada' });
    const second = await kv.set('user/2', { name: 'Grace' });
    const third = await kv.set('user/1', { name: 'Ada Lovelace' });
    expect(second).toBe(first + 1);
    expect(third).toBe(second + 1);
    expect(await kv.get('user/1')).toEqual({
      key: 'user/1',
      lease: 0,
      value: { name: 'Ada Lovelace' },
      createRevision: first,
      modRevision: third,
      version: 2,
    });
  });

  test('a missing key is NOT_FOUND on the wire and undefined in the SDK', async () => {
    expect(await kv.get('nope')).toBeUndefined();
    const raw = new KeyValueServiceClient(server.address, credentials.createInsecure());
    const error = await new Promise<ServiceError | null>((resolve) => raw.get({ key: 'nope' }, (e) => resolve(e)));
    raw.close();
    expect(error?.code).toBe(status.NOT_FOUND);
    expect(error?.details).toContain('"nope"');
  });

  test('Set without a value is INVALID_ARGUMENT (reason INVALID_VALUE), while JSON null is a value', async () => {
    const raw = new KeyValueServiceClient(server.address, credentials.createInsecure());
    const call = (request: SetRequest): Promise<ServiceError | SetResponse> =>
      new Promise((resolve) => raw.set(request, new Metadata(), (e, r) => resolve(e ?? r)));
    const missing = await call({ key: 'k', value: undefined, expectedRevision: undefined, lease: 0, ttlMs: 0 });
    raw.close();
    expect((missing as ServiceError).code).toBe(status.INVALID_ARGUMENT);
    expect((missing as ServiceError).details).toMatch(/value is required/);
    expect((missing as ServiceError).metadata.get('kv-reason')).toEqual(['INVALID_VALUE']);
    await kv.set('k', null);
    expect((await kv.get('k'))?.value).toBeNull();
  });

  test('expected_revision is compare-and-set on mod_revision; a mismatch is ABORTED with the current revision', async () => {
    const created = await kv.set('cas', 1, { expectedRevision: 0 });
    const conflict = await rejection(kv.set('cas', 2, { expectedRevision: 0 }));
    expect(conflict.code).toBe(status.ABORTED);
    expect(conflict.reason).toBe('REVISION_MISMATCH');
    expect(conflict.currentRevision).toBe(created);
    expect(conflict.message).toContain(String(created));
    const updated = await kv.set('cas', 2, { expectedRevision: created });
    expect((await kv.get('cas'))?.modRevision).toBe(updated);
    const stale = await rejection(kv.set('cas', 3, { expectedRevision: created }));
    expect(stale.currentRevision).toBe(updated);
    expect((await kv.get('cas'))?.value).toBe(2);
  });

  test('keys and values over the limits are INVALID_ARGUMENT naming the limit and the size', async () => {
    const longKey = await rejection(kv.set('k'.repeat(65), 1));
    expect(longKey.code).toBe(status.INVALID_ARGUMENT);
    expect(longKey.message).toContain('65');
    expect(longKey.message).toContain('64');
    // Multi-byte characters count in UTF-8 bytes: 22 × 3 bytes = 66 > 64.
    expect((await rejection(kv.set('€'.repeat(22), 1))).code).toBe(status.INVALID_ARGUMENT);
    const bigValue = await rejection(kv.set('big', 'x'.repeat(1100)));
    expect(bigValue.code).toBe(status.INVALID_ARGUMENT);
    expect(bigValue.reason).toBe('TOO_LARGE');
    expect(bigValue.message).toContain('1024');
    expect(bigValue.message).toContain('1102');
    const empty = await rejection(kv.set('', 1));
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(kv.get(''))).code).toBe(status.INVALID_ARGUMENT);
  });

  test('JSON values of every kind round-trip exactly', async () => {
    const values: JsonValue[] = [
      { nested: { deeper: { list: [1, 'two', { three: [true, false, null] }] } }, empty: {}, none: [] },
      [1, [2, [3, [4]]], { a: [] }],
      'plain text',
      '',
      'unicode: héllo wörld — 日本語 — 🎉👩‍👩‍👧 — \u0000 nul',
      0,
      -0.5,
      0.1,
      1e300,
      -1e-300,
      Number.MAX_SAFE_INTEGER,
      true,
      false,
      null,
    ];
    for (const [i, value] of values.entries()) {
      await kv.set(`json/${i}`, value);
      expect((await kv.get(`json/${i}`))?.value).toEqual(value);
    }
  });
});

describe('Delete', () => {
  test('deletes an existing key and reports deleted=false for a missing one', async () => {
    await kv.set('gone', 1);
    expect(await kv.delete('gone')).toBe(true);
    expect(await kv.get('gone')).toBeUndefined();
    expect(await kv.delete('gone')).toBe(false);
  });

  test('conditional delete compares mod_revision; 0 on a missing key is deleted=false, not an error', async () => {
    const revision = await kv.set('d', 1);
    const conflict = await rejection(kv.delete('d', { expectedRevision: revision + 100 }));
    expect(conflict.code).toBe(status.ABORTED);
    expect(conflict.currentRevision).toBe(revision);
    expect(await kv.delete('d', { expectedRevision: revision })).toBe(true);
    expect(await kv.delete('d', { expectedRevision: 0 })).toBe(false);
    expect((await rejection(kv.delete('d', { expectedRevision: revision }))).currentRevision).toBe(0);
  });
});

describe('ListKeys and Clear', () => {
  test('lists keys under a prefix in pages and validates paging fields', async () => {
    let written = 0;
    for (const key of ['a/1', 'a/2', 'a/3', 'b/1']) written = await kv.set(key, key);
    const first = await kv.listKeysPage({ prefix: 'a/', pageSize: 2 });
    expect(first.keys).toEqual(['a/1', 'a/2']);
    expect(first.nextPageToken).not.toBe('');
    // Each page says the store revision it was read at.
    expect(first.revision).toBe(written);
    const later = await kv.set('b/2', 'b/2');
    const second = await kv.listKeysPage({ prefix: 'a/', pageSize: 2, pageToken: first.nextPageToken });
    expect(second).toEqual({ keys: ['a/3'], nextPageToken: '', revision: later });

    const otherPrefix = await rejection(kv.listKeysPage({ prefix: 'b/', pageToken: first.nextPageToken }));
    expect(otherPrefix.code).toBe(status.INVALID_ARGUMENT);
    expect(otherPrefix.message).toMatch(/prefix/);
    expect((await rejection(kv.listKeysPage({ pageToken: 'not a token!' }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await rejection(kv.listKeysPage({ pageToken: Buffer.from('{"v":1}').toString('base64url') }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    // Sent raw: the SDK refuses a negative page size itself, before sending.
    const raw = new KeyValueServiceClient(server.address, credentials.createInsecure());
    const negative = await new Promise<ServiceError | null>((resolve) =>
      raw.listKeys({ prefix: '', pageSize: -1, pageToken: '' }, new Metadata(), (error) => resolve(error)),
    );
    raw.close();
    expect(negative).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'page_size must not be negative (got -1)' });
  });

  test('page_size 0 means 100 and more than 1000 is coerced to 1000', async () => {
    await Promise.all(Array.from({ length: 1005 }, (_, i) => kv.set(`p/${String(i).padStart(4, '0')}`, i)));
    expect((await kv.listKeysPage({ prefix: 'p/' })).keys).toHaveLength(100);
    const big = await kv.listKeysPage({ prefix: 'p/', pageSize: 5000 });
    expect(big.keys).toHaveLength(1000);
    const rest = await kv.listKeysPage({ prefix: 'p/', pageSize: 5000, pageToken: big.nextPageToken });
    expect(rest.keys).toHaveLength(5);
    expect(rest.nextPageToken).toBe('');
  });

  test('clear removes everything under a prefix in one revision', async () => {
    for (const key of ['c/1', 'c/2', 'c/3', 'keep']) await kv.set(key, 1);
    const before = await kv.set('c/4', 1);
    const raw = new KeyValueServiceClient(server.address, credentials.createInsecure());
    const response = await new Promise<{ deletedCount: number; revision: number }>((resolve, reject) =>
      raw.clear({ prefix: 'c/' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    raw.close();
    expect(response).toEqual({ deletedCount: 4, revision: before + 1 });
    expect(await kv.clear({ prefix: 'c/' })).toBe(0);
    expect(await kv.set('after', 1)).toBe(before + 2);
    const keys: string[] = [];
    for await (const key of kv.keys()) keys.push(key);
    expect(keys).toEqual(['after', 'keep']);
    expect(await kv.clear()).toBe(2);
  });
});
