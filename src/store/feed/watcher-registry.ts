/**
 * The live watchers, indexed so that a change finds the watchers of its key
 * without looking at the others (etcd's watcherGroup): a Map by exact key,
 * and a Map by prefix probed once per distinct prefix length in use. So a
 * change costs O(distinct prefix lengths + matching watchers), not
 * O(watchers): a thousand watchers on a thousand "tenant/N/" prefixes of
 * similar length cost a handful of Map lookups per change.
 */

export type WatchTarget = { key: string } | { prefix: string };

export class WatcherRegistry<W> {
  private readonly byKey = new Map<string, Set<W>>();
  private readonly byPrefix = new Map<string, Set<W>>();
  /** Distinct prefix lengths in byPrefix, ascending, with how many prefixes have each. */
  private lengths: number[] = [];
  private readonly lengthCounts = new Map<number, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(target: WatchTarget, watcher: W): void {
    if ('key' in target) {
      addTo(this.byKey, target.key, watcher);
    } else if (addTo(this.byPrefix, target.prefix, watcher)) {
      const n = target.prefix.length;
      const c = this.lengthCounts.get(n) ?? 0;
      this.lengthCounts.set(n, c + 1);
      if (c === 0) this.lengths = [...this.lengths, n].sort((a, b) => a - b);
    }
    this.count++;
  }

  remove(target: WatchTarget, watcher: W): void {
    if ('key' in target) {
      if (!removeFrom(this.byKey, target.key, watcher)) return;
    } else {
      const set = this.byPrefix.get(target.prefix);
      if (set === undefined || !set.has(watcher)) return;
      if (removeFrom(this.byPrefix, target.prefix, watcher) && set.size === 0) {
        const n = target.prefix.length;
        const c = (this.lengthCounts.get(n) ?? 1) - 1;
        if (c === 0) {
          this.lengthCounts.delete(n);
          this.lengths = this.lengths.filter((l) => l !== n);
        } else {
          this.lengthCounts.set(n, c);
        }
      }
    }
    this.count--;
  }

  /** Calls `each` for every watcher whose target covers `key`. */
  forEachMatch(key: string, each: (watcher: W) => void): void {
    const exact = this.byKey.get(key);
    if (exact !== undefined) for (const w of exact) each(w);
    for (const n of this.lengths) {
      if (n > key.length) break;
      const set = this.byPrefix.get(n === key.length ? key : key.slice(0, n));
      if (set !== undefined) for (const w of set) each(w);
    }
  }

  forEach(each: (watcher: W) => void): void {
    for (const set of this.byKey.values()) for (const w of set) each(w);
    for (const set of this.byPrefix.values()) for (const w of set) each(w);
  }
}

/** Adds to the set under `key`; true if the set was created. */
function addTo<W>(map: Map<string, Set<W>>, key: string, watcher: W): boolean {
  const set = map.get(key);
  if (set !== undefined) {
    set.add(watcher);
    return false;
  }
  map.set(key, new Set([watcher]));
  return true;
}

/** Removes from the set under `key` (dropping an emptied set); true if it was there. */
function removeFrom<W>(map: Map<string, Set<W>>, key: string, watcher: W): boolean {
  const set = map.get(key);
  if (set === undefined || !set.delete(watcher)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}
