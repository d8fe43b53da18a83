import fc from 'fast-check';
import { compareKeys, compareSortKeys, keyOfSortKey, sortKey } from '../../src/store/key-order';

const sign = (n: number): number => Math.sign(n);
const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// Well-formed strings biased towards the characters where UTF-16 and code point order disagree.
const tricky = fc.constantFrom('a', 'z', '\u00e9', '\ud7ff', '\ue000', '\uffff', '\ufffd', '\u{10000}', '\u{1f600}', '\u{10ffff}');
const key = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.array(tricky, { maxLength: 6 }).map((parts) => parts.join('')),
);

describe('key order', () => {
  test('compareKeys agrees with UTF-8 byte order (Buffer.compare)', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(sign(compareKeys(a, b))).toBe(sign(utf8Order(a, b)));
      }),
      { numRuns: 5000 },
    );
  });

  test('plain comparison of sortKey() agrees with UTF-8 byte order', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(sign(compareSortKeys(sortKey(a), sortKey(b)))).toBe(sign(utf8Order(a, b)));
      }),
      { numRuns: 5000 },
    );
  });

  test('sortKey keeps prefixes: sortKey(p) starts sortKey(k) exactly when p starts k', () => {
    fc.assert(
      fc.property(key, key, (p, k) => {
        expect(sortKey(k).startsWith(sortKey(p))).toBe(k.startsWith(p));
      }),
    );
  });

  test('keyOfSortKey undoes sortKey, so the index can keep sort keys alone', () => {
    fc.assert(
      fc.property(key, (k) => {
        expect(keyOfSortKey(sortKey(k))).toBe(k);
      }),
      { numRuns: 5000 },
    );
  });

  test('the case UTF-16 gets wrong: U+FFFD comes before U+1F600', () => {
    expect('\u{1f600}' < '\ufffd').toBe(true);
    expect(compareKeys('\ufffd', '\u{1f600}')).toBeLessThan(0);
    expect(sortKey('\ufffd') < sortKey('\u{1f600}')).toBe(true);
    expect(sortKey('plain/ascii')).toBe('plain/ascii');
  });
});
