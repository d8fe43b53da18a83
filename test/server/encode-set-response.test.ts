import { SetResponse } from '../../src/gen/kv/v1/kv';
import { encodeSetResponse } from '../../src/server/wire/encode-responses';

test('a hand-encoded SetResponse is byte for byte what the generated encoder writes', () => {
  for (const revision of [1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    const ours = encodeSetResponse({ revision });
    expect(ours).toEqual(Buffer.from(SetResponse.encode({ revision }).finish()));
    expect(SetResponse.decode(ours).revision).toBe(revision);
  }
});
