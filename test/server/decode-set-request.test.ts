import fc from 'fast-check';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { GetResponse, SetRequest } from '../../src/gen/kv/v1/kv';
import { decodeSetRequest } from '../../src/server/wire/decode-requests';
import { encodeGetResponse } from '../../src/server/wire/encode-responses';
import type { JsonValue } from '../../src/store/key-value-store';
import { JsonText } from '../../src/store/value-rules';

/** A decoded value as the value it stands for: the decoder reads a Set's value into JSON text when it can (json-text.ts). */
function valueOf(value: unknown): JsonValue {
  return (value instanceof JsonText ? JSON.parse(value.json) : value) as JsonValue;
}

/**
 * JSON as the store hands it out: what JSON.parse can return (no -0, no
 * undefined, no NaN). Without "__proto__" field names: the generated codec
 * we compare with loses them (see the test of that case in decode-set-request.test.ts).
 */
const json: fc.Arbitrary<JsonValue> = fc
  .jsonValue({ maxDepth: 6 })
  .map((v) => JSON.parse(JSON.stringify(v), (key, value: unknown) => (key === '__proto__' ? undefined : value)) as JsonValue);

test('decodes what the generated encoder writes exactly as the generated decoder does', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1 }),
      json,
      fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: undefined }),
      (key, value, expectedRevision) => {
        const bytes = SetRequest.encode({ key, value, expectedRevision, lease: 0, ttlMs: 0 }).finish();
        const decoded = decodeSetRequest(bytes);
        expect({ ...decoded, value: valueOf(decoded.value) }).toEqual(SetRequest.decode(bytes));
      },
    ),
    { numRuns: 500 },
  );
});

/** google.protobuf.Value bytes for v, written by hand: the generated encoder itself loses own "__proto__" fields. */
function valueBytes(v: JsonValue): Uint8Array {
  const w = new BinaryWriter();
  if (v === null) w.uint32(8).int32(0);
  else if (typeof v === 'number') w.uint32(17).double(v);
  else if (typeof v === 'string') w.uint32(26).string(v);
  else if (typeof v === 'boolean') w.uint32(32).bool(v);
  else if (Array.isArray(v)) {
    const list = new BinaryWriter();
    for (const item of v) list.uint32(10).bytes(valueBytes(item));
    w.uint32(50).bytes(list.finish());
  } else {
    const struct = new BinaryWriter();
    for (const key of Object.keys(v)) {
      struct.uint32(10).bytes(new BinaryWriter().uint32(10).string(key).uint32(18).bytes(valueBytes(v[key])).finish());
    }
    w.uint32(42).bytes(struct.finish());
  }
  return w.finish();
}

test('an object field named __proto__ is kept as a field, not turned into a prototype', () => {
  const value = JSON.parse('{"__proto__": {"x": 1}, "a": [{"__proto__": 2}]}') as JsonValue;
  const request = new BinaryWriter().uint32(10).string('k').uint32(18).bytes(valueBytes(value)).finish();
  const decoded = decodeSetRequest(request);
  // As text, and as a value once parsed (the store's Get parses it).
  expect(decoded.value).toBeInstanceOf(JsonText);
  expect((decoded.value as JsonText).json).toBe('{"__proto__":{"x":1},"a":[{"__proto__":2}]}');
  expect(Object.getPrototypeOf(valueOf(decoded.value))).toBe(Object.prototype);
});

test('a map entry without a value is refused, not dropped', () => {
  // SetRequest.value = Value{ struct_value = Struct{ fields = entry{ key = "a" } } }
  const entry = new BinaryWriter().uint32(10).string('a').finish();
  const struct = new BinaryWriter().uint32(10).bytes(entry).finish();
  const value = new BinaryWriter().uint32(42).bytes(struct).finish();
  const request = new BinaryWriter().uint32(10).string('k').uint32(18).bytes(value).finish();
  expect(() => decodeSetRequest(request)).toThrow('object field "a" has no value');
});

test('accepts exactly the nesting that every client can decode back from a Get', () => {
  const nest = (levels: number, wrap: (v: JsonValue) => JsonValue): JsonValue => {
    let v: JsonValue = 1;
    for (let i = 0; i < levels; i++) v = wrap(v);
    return v;
  };
  for (const [wrap, deepest] of [
    [(v: JsonValue) => ({ a: v }), 31],
    [(v: JsonValue) => [v], 46],
  ] as const) {
    const ok = nest(deepest, wrap);
    const decoded = decodeSetRequest(SetRequest.encode({ key: 'k', value: ok, expectedRevision: undefined, lease: 0, ttlMs: 0 }).finish());
    // ...and the generated (client-side) decoder can read the Get response back.
    const response = { entry: { key: 'k', value: valueOf(decoded.value), createRevision: 1, modRevision: 1, version: 1, lease: 0 } };
    expect(GetResponse.decode(encodeGetResponse(response)).entry?.value).toEqual(ok);
    const tooDeep = SetRequest.encode({
      key: 'k',
      value: nest(deepest + 1, wrap),
      expectedRevision: undefined,
      lease: 0,
      ttlMs: 0,
    }).finish();
    expect(() => decodeSetRequest(tooDeep)).toThrow(/nested too deeply/);
  }
});

test('an expected_revision beyond 2^53 is refused', () => {
  const request = new BinaryWriter().uint32(10).string('k').uint32(24).int64('9007199254740993').finish();
  expect(() => decodeSetRequest(request)).toThrow(/expected_revision 9007199254740993 is outside/);
});
