/** The keys and values of `npm run bench:store`, shared with its child processes. */

/** A 100-byte JSON value (JSON-encoded size), different per key and write. */
export function benchValue(i: number, w: number): { id: number; w: number; pad: string } {
  const base = JSON.stringify({ id: i, w, pad: '' }).length;
  return { id: i, w, pad: 'x'.repeat(100 - base) };
}

export function benchKey(i: number): string {
  return `user/${String(i).padStart(9, '0')}`;
}
