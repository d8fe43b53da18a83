import fc from 'fast-check';
import { GetResponse } from '../../src/gen/kv/v1/kv';
import { encodeGetResponse } from '../../src/server/wire/encode-responses';
import type { JsonValue } from '../../src/store/key-value-store';

/**
 * JSON as the store hands it out: what JSON.parse can return (no -0, no
 * undefined, no NaN). Without "__proto__" field names: the generated codec
 * we compare with loses them (see the test of that case in decode-set-request.test.ts).
 */
const json: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 6 })
  .map((v) => JSON.parse(JSON.stringify(v), (key, value: unknown) => (key === '__proto__' ? undefined : value)) as JsonValue);

const revision = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.integer({ min: 1, max: 2 ** 40 }));

test('the hand-written Get encoder decodes to the same message as the generated one', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', minLength: 1 }), json, revision, revision, revision, (key, value, a, b, c) => {
      const response = { entry: { key, value, createRevision: a, modRevision: b, version: c, lease: 0 } };
      const ours = GetResponse.decode(encodeGetResponse(response));
      expect(ours).toEqual(GetResponse.decode(GetResponse.encode(response).finish()));
      expect(ours.entry?.value).toEqual(value);
    }),
    { numRuns: 500 },
  );
});

test('keys, strings and field names beyond the Basic Multilingual Plane, and empty containers', () => {
  const value: JsonValue = { '': [], 'é😀': { '\u{10FFFF}': 'astral 𝄞', n: 1e300, z: 0.1, e: {} }, list: [null, true, false, -1.5, ''] };
  const response = { entry: { key: 'k/😀', value, createRevision: 1, modRevision: 2 ** 50, version: 3, lease: 2 ** 47 } };
  expect(GetResponse.decode(encodeGetResponse(response)).entry).toEqual(response.entry);
});
