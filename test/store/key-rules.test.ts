/**
 * The key rules' one-pass UTF-8 size against Node's and a regular
 * expression's answers, over any UTF-16 text (lone surrogates included).
 */
import fc from 'fast-check';
import { InvalidKeyError, TooLargeError } from '../../src/store/errors';
import { utf8Size, validateKey, validatePrefix } from '../../src/store/key-rules';

const loneSurrogate = /\p{Cs}/u;
// Any UTF-16 code units, weighted toward the boundaries the size depends on.
const unit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }),
  fc.constantFrom(0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xffff),
);
const text = fc.array(unit, { maxLength: 12 }).map((units) => String.fromCharCode(...units));

test('utf8Size is the UTF-8 size of text without a lone surrogate, and -1 for text with one', () => {
  fc.assert(
    fc.property(text, (s) => {
      expect(utf8Size(s)).toBe(loneSurrogate.test(s) ? -1 : Buffer.byteLength(s, 'utf8'));
    }),
    { numRuns: 5000 },
  );
  expect(utf8Size('a\u{1f600}é\u20ac')).toBe(1 + 4 + 2 + 3);
  expect(utf8Size('\ud83d')).toBe(-1);
  expect(utf8Size('\ude00\ud83d')).toBe(-1);
});

test('keys: lone surrogates and sizes past the limit are refused with their own errors', () => {
  expect(validateKey('k\u{1f600}', 5)).toBe(5);
  expect(() => validateKey('k\u{1f600}', 4)).toThrow(TooLargeError);
  expect(() => validateKey('k\ud83d', 100)).toThrow(
    new InvalidKeyError('key "k\\ud83d" is not valid Unicode text (it has a lone surrogate)'),
  );
  expect(() => validateKey('', 100)).toThrow(InvalidKeyError);
  expect(validatePrefix('p\u{1f600}', 'prefix')).toBe('p\u{1f600}');
  expect(() => validatePrefix('p\udc00', 'prefix')).toThrow(InvalidKeyError);
});
