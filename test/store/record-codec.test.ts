import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32Of } from '../../src/store/file/record-codec';

describe('record codec', () => {
  test('crc32Of gives zlib.crc32 (the CRC docs/storage-format.md names) for any span', () => {
    const buf = randomBytes(4096);
    for (let start = 0; start < 40; start++) {
      for (const length of [0, 1, 7, 8, 9, 17, 33, 130, 1000, 4000]) {
        const end = Math.min(buf.length, start + length);
        expect(crc32Of(buf, start, end)).toBe(crc32(buf.subarray(start, end)));
      }
    }
  });
});
