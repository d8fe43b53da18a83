import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer({ args: ['--fsync', 'never'] });
  kv = new KvClient(server.address);
});

afterAll(async () => {
  kv.close();
  await server.stop();
});

/** Unicode code point order is UTF-8 byte order (JS `<` compares UTF-16 code units, which differs above U+FFFF). */
const codePointOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

// Characters chosen so UTF-16 order and code point order disagree: U+FF5E and
// U+E000 sort after U+10000+ in UTF-16 (surrogates are 0xD800-0xDFFF) but before it in code points.
const ALPHABET = ['a', 'z', 'é', '\uE000', '\uFF5E', '😀', '𝄞', '\u{10FFFF}', '/'];

function keyFor(i: number): string {
  let key = 'page/';
  for (let n = i + 1; n > 0; n = Math.floor(n / ALPHABET.length)) key += ALPHABET[n % ALPHABET.length];
  return key;
}

test('paging under concurrent writers never repeats a key, never misses a stable one, and keeps code point order', async () => {
  const stable = Array.from({ length: 3000 }, (_, i) => keyFor(i));
  for (let i = 0; i < stable.length; i += 500) {
    await Promise.all(stable.slice(i, i + 500).map((key) => kv.set(key, { stable: true })));
  }
  expect(stable.slice().sort(codePointOrder)).not.toEqual(stable.slice().sort());

  // Writers add and remove other keys under the same prefix while we page.
  let writing = true;
  const writers = [0, 1].map(async (w) => {
    for (let n = 0; writing; n++) {
      const key = `${keyFor(n * 7 + w)}~churn${w}`;
      await kv.set(key, n);
      if (n % 3 === 0) await kv.delete(key);
    }
  });

  const seen: string[] = [];
  let pageToken = '';
  do {
    const page = await kv.listKeysPage({ prefix: 'page/', pageSize: 97, pageToken });
    seen.push(...page.keys);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  writing = false;
  await Promise.all(writers);

  expect(new Set(seen).size).toBe(seen.length);
  expect(seen.slice().sort(codePointOrder)).toEqual(seen);
  const seenSet = new Set(seen);
  expect(stable.filter((key) => !seenSet.has(key))).toEqual([]);
  expect(seen.length).toBeGreaterThan(stable.length);
});

test('a page of large values ends early with a next page token, so every page fits what a client receives', async () => {
  // 34 values of 1 MB: past a page's 32 MiB of protobuf.
  const big = 'x'.repeat(1_000_000);
  const keys = Array.from({ length: 34 }, (_, i) => `large/${String(i).padStart(2, '0')}`);
  await Promise.all(keys.map((key) => kv.set(key, big)));
  const first = await kv.listPage({ prefix: 'large/', pageSize: 100 });
  expect(first.entries.length).toBeGreaterThan(0);
  expect(first.entries.length).toBeLessThan(keys.length);
  expect(first.nextPageToken).not.toBe('');
  const listed: string[] = [];
  for await (const entry of kv.entries({ prefix: 'large/', pageSize: 100 })) {
    expect(entry.value).toBe(big);
    listed.push(entry.key);
  }
  expect(listed).toEqual(keys);
});
