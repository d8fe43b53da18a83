/**
 * A listing page by page (ls, get --prefix), and --print-revision: each page
 * is read at its own revision, and the first page's is the one a watch can
 * start after without missing a change.
 */
import { Option } from 'commander';
import type { Session } from './session';

/** What a listing page gives: its items, where the next page starts, and the revision it was read at. */
export interface ListedPage<T> {
  items: T[];
  nextPageToken: string;
  revision: number;
}

/** --print-revision (`needs`: the option it goes with, if any, as the help's first words). */
export function printRevisionOption(needs = ''): Option {
  return new Option(
    '--print-revision',
    `${needs}then say on stderr "listed at revision N", the revision its first page was read at ` +
      `(stdout is the same as without it); watch --rev N+1 then misses no change since (later pages may show some of them already)`,
  );
}

/**
 * Every item of a listing, a page at a time (`page` fetches the page at a
 * token, '' the first); with `printRevision`, once the listing is done
 * `finish` says on stderr the revision its first page was read at.
 */
export function listedPages<T>(page: (pageToken: string) => Promise<ListedPage<T>>): {
  items: AsyncGenerator<T, void, undefined>;
  finish(session: Session, printRevision: boolean | undefined): void;
} {
  let listedAt: number | undefined;
  async function* items(): AsyncGenerator<T, void, undefined> {
    let pageToken = '';
    do {
      const listed = await page(pageToken);
      listedAt ??= listed.revision;
      yield* listed.items;
      pageToken = listed.nextPageToken;
    } while (pageToken !== '');
  }
  return {
    items: items(),
    finish: (session, printRevision) => {
      if (printRevision === true && listedAt !== undefined) session.warn(`listed at revision ${listedAt}`);
    },
  };
}
