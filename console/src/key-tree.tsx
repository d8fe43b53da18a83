/**
 * Keys under a prefix as a tree: the keys and sub-folders ("user/" under
 * "") of one level, built from ListKeys pages of 50 (more on request),
 * with a breadcrumb to walk back up. A "/" in a key makes a folder.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { KeyText } from './key-text';
import { describeFailure, type KvClient, shownKey } from './kv';

const PAGE_SIZE = 50;
/** A level is filled to this many entries before Load more is offered, so folders with many keys do not hide their siblings... */
const LEVEL_SIZE = 50;
/** ...reading at most this many pages at a time. */
const MAX_PAGES = 10;

interface Props {
  client: KvClient;
  prefix: string;
  selected: string | undefined;
  /** Bumped after every write the console makes, to reload the listing. */
  version: number;
  onPrefix: (prefix: string) => void;
  /** List again (and refresh what else is shown): Refresh, or Go on the prefix already shown. */
  onRefresh: () => void;
  onSelect: (key: string) => void;
  onClear: () => void;
  onFailure: (error: unknown) => void;
}

interface Listing {
  /** The prefix these keys were listed under. */
  prefix: string;
  keys: string[];
  nextPageToken: string;
}

export function KeyTree({ client, prefix, selected, version, onPrefix, onRefresh, onSelect, onClear, onFailure }: Props) {
  const [loaded, setListing] = useState<Listing | undefined>(undefined);
  // Until the new prefix's first page arrives, the previous listing is not shown under its name.
  const listing = loaded?.prefix === prefix ? loaded : undefined;
  const [error, setError] = useState<string | undefined>(undefined);
  const [typed, setTyped] = useState(prefix);

  // Which listing is current: an answer for a prefix the person has already left must not land on the new one.
  const generation = useRef(0);
  /** What the last load asked for, for Retry. */
  const lastAsked = useRef<{ pageToken: string; before: string[]; atLeast: number }>({ pageToken: '', before: [], atLeast: 0 });
  /** A folder was opened from here: focus its first entry once it is listed. */
  const focusFirst = useRef(false);
  const list = useRef<HTMLUListElement>(null);

  /** Reads pages until there are `atLeast` keys and the level has LEVEL_SIZE entries (or MAX_PAGES were read, or there are no more). */
  const load = async (pageToken: string, before: string[], atLeast = 0): Promise<void> => {
    const asked = generation.current;
    lastAsked.current = { pageToken, before, atLeast };
    setError(undefined);
    try {
      let keys = before;
      let token = pageToken;
      for (let pages = 0; ;) {
        const page = await client.listKeys({ prefix, pageSize: PAGE_SIZE, pageToken: token });
        if (asked !== generation.current) return;
        keys = [...keys, ...page.keys];
        token = page.nextPageToken;
        pages++;
        if (
          token === '' ||
          (keys.length >= atLeast && (pages >= MAX_PAGES || levelSize(prefix, keys) >= levelSize(prefix, before) + LEVEL_SIZE))
        )
          break;
      }
      setListing({ prefix, keys, nextPageToken: token });
    } catch (failure) {
      if (asked !== generation.current) return;
      setError(describeFailure(failure));
      onFailure(failure);
    }
  };

  /** The prefix last listed: the box already shows it. */
  const listedPrefix = useRef(prefix);

  useEffect(() => {
    generation.current++;
    // The box follows the prefix shown, when that changes; not on the first listing, nor on a listing again of the same
    // prefix (after a write, or a sign-in), where it shows it already: there, setting it again (preact runs effects after
    // paint, up to a frame or more later) wiped what a quick hand or a test had typed meanwhile.
    if (listedPrefix.current !== prefix) setTyped(prefix);
    listedPrefix.current = prefix;
    // The same prefix listed again (after a write, or Refresh): as many keys as were loaded, shown until the new listing comes.
    const again = loaded?.prefix === prefix ? loaded.keys.length : 0;
    if (again === 0) setListing(undefined);
    void load('', [], again);
  }, [prefix, version]);

  useEffect(() => {
    if (listing === undefined || !focusFirst.current) return;
    focusFirst.current = false;
    list.current?.querySelector('button')?.focus();
  }, [listing]);

  const { folders, leaves } = levelOf(prefix, listing?.keys ?? []);
  const crumbs = breadcrumbs(prefix);

  return (
    <section class="tree" aria-labelledby="tree-title">
      <h2 id="tree-title">Keys</h2>
      <form
        class="prefix"
        onSubmit={(event) => {
          event.preventDefault();
          if (typed === prefix) onRefresh();
          else onPrefix(typed);
        }}
      >
        <label for="prefix">Prefix</label>
        <input id="prefix" value={typed} placeholder="(all keys)" onInput={(event) => setTyped(event.currentTarget.value)} />
        <button type="submit">Go</button>
      </form>
      <nav aria-label="Folder">
        <ol class="crumbs">
          {crumbs.map((crumb, i) => (
            <li key={crumb.prefix}>
              {i === crumbs.length - 1 ? (
                <span aria-current="location">
                  <CrumbLabel crumb={crumb} />
                </span>
              ) : (
                <button
                  type="button"
                  class="link"
                  onClick={() => {
                    focusFirst.current = true;
                    onPrefix(crumb.prefix);
                  }}
                >
                  <CrumbLabel crumb={crumb} />
                </button>
              )}
            </li>
          ))}
        </ol>
      </nav>
      {error !== undefined && (
        <>
          <p class="error" role="alert">
            Could not list the keys: {error}
          </p>
          <button
            type="button"
            onClick={() => {
              const { pageToken, before, atLeast } = lastAsked.current;
              void load(pageToken, before, atLeast);
            }}
          >
            Retry
          </button>
        </>
      )}
      {listing === undefined && error === undefined && <p aria-live="polite">Loading…</p>}
      {listing !== undefined && (
        <ul class="keys" ref={list} aria-label={`Keys under ${prefix === '' ? 'the root' : shownKey(prefix)}`}>
          {folders.map((folder) => (
            <li key={`folder:${folder}`}>
              <button
                type="button"
                class="folder"
                onClick={() => {
                  focusFirst.current = true;
                  onPrefix(folder);
                }}
                aria-label={`Folder ${shownKey(folder)}`}
              >
                <span aria-hidden="true">📁 </span>
                <KeyText value={folder.slice(prefix.length)} />
              </button>
            </li>
          ))}
          {leaves.map((key) => (
            <li key={`key:${key}`}>
              <button type="button" class="key" aria-current={key === selected ? 'true' : undefined} onClick={() => onSelect(key)}>
                <KeyText value={key.slice(prefix.length) === '' ? key : key.slice(prefix.length)} />
              </button>
            </li>
          ))}
          {folders.length === 0 && leaves.length === 0 && <li class="empty">No keys under this prefix.</li>}
        </ul>
      )}
      <div class="actions">
        {listing !== undefined && listing.nextPageToken !== '' && (
          <button type="button" onClick={() => void load(listing.nextPageToken, listing.keys)}>
            Load more
          </button>
        )}
        <button
          type="button"
          onClick={() => {
            setTyped(prefix);
            onRefresh();
          }}
        >
          Refresh
        </button>
        <button type="button" class="danger" onClick={onClear}>
          {prefix === '' ? (
            'Clear all keys…'
          ) : (
            <>
              Clear <KeyText value={prefix} quoted />…
            </>
          )}
        </button>
      </div>
    </section>
  );
}

function levelSize(prefix: string, keys: string[]): number {
  const { folders, leaves } = levelOf(prefix, keys);
  return folders.length + leaves.length;
}

/** The sub-folders and keys directly under `prefix`, in the order ListKeys gave them. */
function levelOf(prefix: string, keys: string[]): { folders: string[]; leaves: string[] } {
  const folders: string[] = [];
  const leaves: string[] = [];
  for (const key of keys) {
    const slash = key.indexOf('/', prefix.length);
    if (slash === -1 || slash === key.length - 1) leaves.push(key);
    else {
      const folder = key.slice(0, slash + 1);
      if (folders[folders.length - 1] !== folder) folders.push(folder);
    }
  }
  return { folders, leaves };
}

/** One step of the breadcrumb: the root, a folder, or the start of a key (a prefix that does not end in "/"). */
interface Crumb {
  prefix: string;
  /** The part of the prefix this step adds; undefined for the root. */
  part?: string;
  partial?: boolean;
}

function breadcrumbs(prefix: string): Crumb[] {
  const crumbs: Crumb[] = [{ prefix: '' }];
  let at = 0;
  for (let slash = prefix.indexOf('/'); slash !== -1; slash = prefix.indexOf('/', at)) {
    crumbs.push({ part: prefix.slice(at, slash + 1), prefix: prefix.slice(0, slash + 1) });
    at = slash + 1;
  }
  if (at < prefix.length) crumbs.push({ part: prefix.slice(at), prefix, partial: true });
  return crumbs;
}

function CrumbLabel({ crumb }: { crumb: Crumb }) {
  if (crumb.part === undefined) return <>all keys</>;
  return (
    <>
      <KeyText value={crumb.part} />
      {crumb.partial === true && '…'}
    </>
  );
}
