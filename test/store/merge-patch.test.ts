/** RFC 7396's merge patch, checked against every example in its Appendix A. */
import { applyMergePatch } from '../../src/store/merge-patch';
import type { JsonValue } from '../../src/store/key-value-store';

const appendixA: Array<[JsonValue, JsonValue, JsonValue]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [
    ['a', 'b'],
    ['c', 'd'],
    ['c', 'd'],
  ],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

test.each(appendixA)('RFC 7396 Appendix A: %j patched with %j is %j', (target, patch, result) => {
  const before = JSON.stringify(target);
  expect(applyMergePatch(target, patch)).toEqual(result);
  expect(JSON.stringify(target)).toBe(before);
});

test('members named __proto__, constructor and prototype are ordinary members, and the rest of the patch still applies', () => {
  const target = JSON.parse('{"__proto__":{"x":1},"keep":true}') as JsonValue;
  const patch = JSON.parse('{"__proto__":{"y":2},"constructor":"c","prototype":null,"after":1}') as JsonValue;
  const merged = applyMergePatch(target, patch) as Record<string, JsonValue>;
  expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
  expect(JSON.stringify(merged)).toBe('{"__proto__":{"x":1,"y":2},"keep":true,"constructor":"c","after":1}');
});
