import { InvalidArgumentError, Option } from 'commander';

/** The largest page a server returns (larger page sizes are clamped to it): a --limit below it asks for no more than it needs. */
const MAX_PAGE_SIZE = 1000;

/** --limit N for the list commands: stop after N items (commander refuses anything but a whole number >= 1, exit 2). */
export function limitOption(what: string): Option {
  return new Option('--limit <n>', `print at most N ${what} (default: all, every page)`).argParser((raw: string) => {
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('give a whole number >= 1 (leave --limit out for all)');
    return n;
  });
}

/** The page size to ask for under a --limit: no more than the limit. */
export function pageSizeFor(limit: number | undefined): number | undefined {
  return limit === undefined ? undefined : Math.min(limit, MAX_PAGE_SIZE);
}

/** The first `limit` items of `items` (all of them without a limit); stops fetching pages once it has them. */
export async function* take<T>(items: AsyncIterable<T>, limit: number | undefined): AsyncGenerator<T, void, undefined> {
  if (limit === undefined) {
    yield* items;
    return;
  }
  let count = 0;
  for await (const item of items) {
    yield item;
    if (++count >= limit) return;
  }
}
