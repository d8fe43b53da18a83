/**
 * The console: keys as a tree on the left, the selected entry (or a new
 * one) on the right, and a live view of changes under the current prefix.
 * Asks for a token when the server wants one.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Event, EventType } from './gen/kv/v1/kv_pb';
import { ConfirmDialog } from './confirm-dialog';
import { EntryPanel, editInProgress } from './entry-panel';
import { KeyTree } from './key-tree';
import { KeyText } from './key-text';
import { createKvClient, describeFailure, isUnauthenticated, saveToken, savedToken } from './kv';
import { LiveView } from './live-view';
import { Login } from './login';
import { NewEntry } from './new-entry';

type Pane = { kind: 'none' } | { kind: 'entry'; key: string } | { kind: 'new' };

/** The folder and entry shown, kept in the address (#prefix=user%2F&key=user%2F1), so Back and a reload return to them. */
function readLocation(): { prefix: string; pane: Pane; problem?: string } {
  const hash = window.location.hash.slice(1);
  // URLSearchParams reads percent-encoding that is not UTF-8 as U+FFFD: such a link would open another key than it names.
  for (const part of hash.split('&')) {
    try {
      decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      return {
        prefix: '',
        pane: { kind: 'none' },
        problem: 'The address names a key or prefix that is not valid text (its %-escapes are not UTF-8): nothing was opened.',
      };
    }
  }
  const params = new URLSearchParams(hash);
  const key = params.get('key');
  // No key is empty: #key= names none.
  return { prefix: params.get('prefix') ?? '', pane: key === null || key === '' ? { kind: 'none' } : { kind: 'entry', key } };
}

function hashOf(prefix: string, pane: Pane): string {
  const params = new URLSearchParams();
  if (prefix !== '') params.set('prefix', prefix);
  if (pane.kind === 'entry') params.set('key', pane.key);
  const text = params.toString();
  return text === '' ? '' : `#${text}`;
}

export function App() {
  const [token, setToken] = useState(savedToken);
  const [needsLogin, setNeedsLogin] = useState(false);
  const [prefix, setPrefix] = useState(() => readLocation().prefix);
  const [pane, setPane] = useState<Pane>(() => readLocation().pane);
  const [version, setVersion] = useState(0);
  /** Bumped to fetch the open entry again (Refresh, a change to it seen in the live view, the live view back after the server was away). */
  const [refresh, setRefresh] = useState(0);
  /** Bumped when the live view finds the store has another history (restored from a backup): what is shown is fetched again. */
  const [history, setHistory] = useState(0);
  /** Bumped on sign-out: everything below starts afresh, nothing of the previous session is shown. */
  const [session, setSession] = useState(0);
  const [live, setLive] = useState(false);
  const [confirmClear, setConfirmClear] = useState(false);
  const [notice, setNotice] = useState<{ text: ComponentChildren; error: boolean } | undefined>(() => {
    const problem = readLocation().problem;
    return problem === undefined ? undefined : { text: problem, error: true };
  });
  /** Bumped at each sign-in: a new client, so what waited for one (the live view) goes on even with the same token. */
  const [signIns, setSignIns] = useState(0);
  const client = useMemo(() => createKvClient(() => token), [token, signIns]);

  // Each folder or entry opened is a step Back can undo; Back and Forward show what the address names.
  const paneKey = pane.kind === 'entry' ? pane.key : undefined;
  // At once (a layout effect), so the address names what is shown as soon as it is.
  useLayoutEffect(() => {
    const hash = hashOf(prefix, pane);
    if (hash !== window.location.hash) window.history.pushState(null, '', hash === '' ? window.location.pathname : hash);
  }, [prefix, paneKey]);
  const shownNow = useRef({ prefix, pane });
  shownNow.current = { prefix, pane };
  useEffect(() => {
    const follow = (): void => {
      const shown = readLocation();
      const now = shownNow.current;
      const leaving = now.pane.kind === 'entry' && !(shown.pane.kind === 'entry' && shown.pane.key === now.pane.key);
      if (leaving && !mayDiscardEdit()) {
        // Stay: the address goes back to what is shown.
        window.history.pushState(null, '', hashOf(now.prefix, now.pane) || window.location.pathname);
        return;
      }
      if (shown.problem !== undefined) setNotice({ text: shown.problem, error: true });
      setPrefix(shown.prefix);
      setPane((before) => (shown.pane.kind === 'none' && before.kind === 'new' ? before : shown.pane));
    };
    window.addEventListener('popstate', follow);
    return () => window.removeEventListener('popstate', follow);
  }, []);

  /** Opening something else drops an unsaved edit: ask first. */
  const mayDiscardEdit = (): boolean => !editInProgress() || window.confirm('Discard the changes you have not saved?');

  const changed = (): void => setVersion((v) => v + 1);
  const onFailure = (error: unknown): void => {
    if (isUnauthenticated(error)) setNeedsLogin(true);
  };
  /** Bumped at each action: the entry panel's message of an earlier one goes too. */
  const [acted, setActed] = useState(0);
  /** A new action: the notice of the previous one goes (and the entry panel's message). */
  const act = (): void => {
    setNotice(undefined);
    setActed((n) => n + 1);
  };
  /** The wait after the last listing again, and whether another is wanted when it ends (listAgainSoon). */
  const listAgain = useRef<{ timer?: ReturnType<typeof setTimeout>; wanted: boolean }>({ wanted: false });
  /**
   * Lists the keys again, as a key under the prefix was created or deleted (the live view saw it): at once, then at
   * most once a second, so a burst of writes costs one listing a second, not one for each.
   */
  const listAgainSoon = (): void => {
    const state = listAgain.current;
    if (state.timer !== undefined) {
      state.wanted = true;
      return;
    }
    changed();
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (state.wanted) {
        state.wanted = false;
        listAgainSoon();
      }
    }, 1000);
  };
  const onEvents = (events: Event[]): void => {
    if (pane.kind === 'entry' && events.some((event) => event.entry?.key === pane.key)) setRefresh((r) => r + 1);
    // A change to a key already listed leaves the listing as it is; a key created or deleted changes it.
    if (events.some((event) => event.type === EventType.DELETE || event.entry?.version === 1n)) listAgainSoon();
  };
  const onHistoryChanged = (): void => {
    changed();
    setHistory((h) => h + 1);
  };
  /** The live view watches again after the server was away: the keys and the entry open, which may have failed to load meanwhile, are fetched again. */
  const onReconnected = (): void => {
    changed();
    setRefresh((r) => r + 1);
  };

  // When a token is refused mid-session the console stays mounted behind the sign-in (hidden), so an edit in progress
  // survives and its Save can be pressed again once signed in.
  const login = needsLogin && (
    <Login
      refused={token !== ''}
      client={(entered) => createKvClient(() => entered)}
      onToken={(entered) => {
        saveToken(entered);
        setToken(entered);
        setSignIns((n) => n + 1);
        setNeedsLogin(false);
        setNotice(undefined);
        changed();
        setRefresh((r) => r + 1);
      }}
    />
  );

  const clear = async (): Promise<void> => {
    setConfirmClear(false);
    try {
      const { deletedCount } = await client.clear({ prefix });
      setNotice({
        text: (
          <>
            Cleared {String(deletedCount)} key{deletedCount === 1n ? '' : 's'} under{' '}
            {prefix === '' ? 'the root' : <KeyText value={prefix} quoted />}.
          </>
        ),
        error: false,
      });
      // The entry open went with the prefix: it closes, unless it holds an edit not saved and the person keeps it (its
      // save then finds the key deleted, and offers to create it again).
      if (pane.kind === 'entry' && pane.key.startsWith(prefix) && mayDiscardEdit()) setPane({ kind: 'none' });
      changed();
    } catch (error) {
      setNotice({ text: describeFailure(error), error: true });
      onFailure(error);
    }
  };

  return (
    <>
      {login}
      <div key={session} class="console" hidden={needsLogin}>
        <header>
          <h1>kv console</h1>
          <div class="actions">
            <button
              type="button"
              onClick={() => {
                act();
                if (pane.kind !== 'new' && !mayDiscardEdit()) return;
                setPane({ kind: 'new' });
              }}
            >
              New key
            </button>
            <button
              type="button"
              aria-pressed={live}
              onClick={() => {
                act();
                setLive(!live);
              }}
            >
              {live ? 'Stop live view' : 'Live view'}
            </button>
            {token !== '' && (
              <button
                type="button"
                onClick={() => {
                  // Signing out drops what is shown, an unsaved edit among it: ask first, and stay signed in if it is kept.
                  if (!mayDiscardEdit()) return;
                  saveToken('');
                  setToken('');
                  setNotice(undefined);
                  setPane({ kind: 'none' });
                  setSession((s) => s + 1);
                  setNeedsLogin(true);
                }}
              >
                Sign out
              </button>
            )}
          </div>
        </header>
        {notice !== undefined && (
          <p class={notice.error ? 'error banner' : 'notice banner'} role={notice.error ? 'alert' : 'status'}>
            {notice.text}
          </p>
        )}
        <main class={live ? 'with-live' : ''}>
          <KeyTree
            client={client}
            prefix={prefix}
            selected={pane.kind === 'entry' ? pane.key : undefined}
            version={version}
            onPrefix={(next) => {
              setPrefix(next);
              act();
            }}
            onRefresh={() => {
              act();
              changed();
              setRefresh((r) => r + 1);
            }}
            onSelect={(key) => {
              if (!(pane.kind === 'entry' && pane.key === key) && !mayDiscardEdit()) return;
              act();
              setPane({ kind: 'entry', key });
            }}
            onClear={() => {
              act();
              setConfirmClear(true);
            }}
            onFailure={onFailure}
          />
          {pane.kind === 'entry' && (
            <EntryPanel
              key={pane.key}
              client={client}
              entryKey={pane.key}
              refresh={refresh}
              history={history}
              signIn={signIns}
              acted={acted}
              onAction={() => setNotice(undefined)}
              onChanged={changed}
              onFailure={onFailure}
            />
          )}
          {pane.kind === 'new' && (
            <NewEntry
              client={client}
              prefix={prefix}
              signIn={signIns}
              onCreated={(key) => {
                changed();
                setPane({ kind: 'entry', key });
              }}
              onCancel={() => setPane({ kind: 'none' })}
              onFailure={onFailure}
            />
          )}
          {pane.kind === 'none' && (
            <section class="entry placeholder">
              <p>Choose a key on the left, or create a new one.</p>
            </section>
          )}
          {live && (
            <LiveView
              client={client}
              prefix={prefix}
              onFailure={onFailure}
              onEvents={onEvents}
              onHistoryChanged={onHistoryChanged}
              onReconnected={onReconnected}
            />
          )}
        </main>
        {confirmClear && (
          <ConfirmDialog
            title={
              prefix === '' ? (
                'Clear every key?'
              ) : (
                <>
                  Clear every key under <KeyText value={prefix} quoted />?
                </>
              )
            }
            confirmLabel="Clear"
            onConfirm={() => void clear()}
            onCancel={() => setConfirmClear(false)}
          >
            <p>
              This removes{' '}
              {prefix === '' ? (
                'every key in the store'
              ) : (
                <>
                  every key that starts with{' '}
                  <code>
                    <KeyText value={prefix} />
                  </code>
                </>
              )}{' '}
              in one step. It cannot be undone.
            </p>
          </ConfirmDialog>
        )}
      </div>
    </>
  );
}
