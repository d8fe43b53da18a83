/** Bytes a data directory takes on disk: the blocks allocated to its files (what `du` counts), so preallocated space counts too. */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).blocks * 512;
  }
  return total;
}
