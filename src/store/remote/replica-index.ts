/**
 * A worker's copy of the owner's index: every live key and its entry, in code
 * point order, at one revision. Loaded from the owner's snapshot, then kept
 * current by applying the owner's change feed. A B+ tree, so a frozen copy
 * for a backup is O(1) (clone() shares nodes, copying them on write).
 */
import BTree from 'sorted-btree';
import type { KeyChange, StoredEntry } from '../change';
import { compareKeys } from '../key-order';

export class ReplicaIndex {
  private tree = new BTree<string, StoredEntry>(undefined, compareKeys);
  /** Every change up to this revision is applied, none after. */
  revision = 0;

  get size(): number {
    return this.tree.size;
  }

  get(key: string): StoredEntry | undefined {
    return this.tree.get(key);
  }

  load(entries: ReadonlyArray<readonly [string, StoredEntry]>): void {
    for (const [key, entry] of entries) this.tree.set(key, entry);
  }

  /** The key's entry before the change is the replica's own: the feed need not carry it. */
  apply(change: KeyChange): void {
    switch (change.type) {
      case 'set':
        this.tree.set(change.key, change.entry);
        return;
      case 'delete':
        this.tree.delete(change.key);
        return;
      case 'clear':
        for (const [key] of change.removed) this.tree.delete(key);
        return;
    }
  }

  /** Keys under `prefix`, strictly after `startAfter`, at most `limit` of them; `more` if another matches. */
  list(prefix: string, startAfter: string | undefined, limit: number): { keys: string[]; more: boolean } {
    const from = startAfter !== undefined && compareKeys(startAfter, prefix) > 0 ? startAfter : prefix;
    const keys: string[] = [];
    for (const [key] of this.tree.entries(from)) {
      if (key === startAfter) continue;
      if (!key.startsWith(prefix)) break;
      if (keys.length >= limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }

  /** A frozen copy: later changes to the replica do not show in it. */
  freeze(): { entries(): Iterable<readonly [string, StoredEntry]>; size: number } {
    const copy = this.tree.clone();
    return { entries: () => copy.entries(), size: copy.size };
  }
}
