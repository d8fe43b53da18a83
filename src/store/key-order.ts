/**
 * Keys are ordered by Unicode code point (= UTF-8 byte order), which is what
 * etcd and every other client language sees. JavaScript's `<` compares UTF-16
 * code units instead; the two differ only where a surrogate (U+D800–U+DFFF,
 * half of a code point ≥ U+10000) meets a code unit in U+E000–U+FFFF: UTF-16
 * puts the astral character first, code point order puts it last.
 */

/** Where a UTF-16 code unit goes so that code-unit order equals code point order. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates move above U+FFFF's slot; U+E000–U+FFFF slide down to fill the gap.
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/** Compares two well-formed strings in Unicode code point order; the sign is what matters. */
export function compareKeys(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

const needsRanking = /[\ud800-\uffff]/;

/**
 * A string whose plain `<` order (UTF-16 code units, which V8 compares natively
 * and fast) equals the code point order of `key`. For the common key with no
 * code unit ≥ U+D800 it is `key` itself, so an index keyed by it costs nothing
 * extra. Prefixes are preserved: `sortKey(p)` is a prefix of `sortKey(k)`
 * exactly when `p` is a prefix of `k`.
 */
export function sortKey(key: string): string {
  if (!needsRanking.test(key)) return key;
  let out = '';
  for (let i = 0; i < key.length; i++) out += String.fromCharCode(codePointRank(key.charCodeAt(i)));
  return out;
}

/** The key whose sortKey() this is (the ranking is a bijection on code units). */
export function keyOfSortKey(sk: string): string {
  if (!needsRanking.test(sk)) return sk;
  let out = '';
  for (let i = 0; i < sk.length; i++) {
    const r = sk.charCodeAt(i);
    out += String.fromCharCode(r < 0xd800 ? r : r < 0xf800 ? r + 0x800 : r - 0x2000);
  }
  return out;
}

/** Plain code-unit comparison, for use on sortKey() results. */
export function compareSortKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
