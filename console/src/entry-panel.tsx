/**
 * One entry: its value as formatted JSON with its revisions; editing with
 * JSON validation; a save that is a compare-and-set on the revision the
 * edit started from. When someone else wrote in between, both versions are
 * shown and the person chooses.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ConfirmDialog } from './confirm-dialog';
import { ConnectError } from '@connectrpc/connect';
import type { Value } from '@bufbuild/protobuf/wkt';
import { create } from '@bufbuild/protobuf';
import { type Entry, EntrySchema, EventType } from './gen/kv/v1/kv_pb';
import { KeyText } from './key-text';
import { describeFailure, formatValue, type KvClient, listedValue, parseValue, reasonOf, showJson } from './kv';
import { ListedValue } from './listed-value';

interface Props {
  client: KvClient;
  entryKey: string;
  /** Bumped when the entry may have changed elsewhere (a refresh, a change seen in the live view): it is fetched again unless being edited. */
  refresh: number;
  /**
   * Bumped when the server's store turned out to have another history (the live view saw another history id:
   * restored from a backup): fetched again as for `refresh`, and a key not found is one that does not exist, not one
   * deleted since it was shown.
   */
  history: number;
  /** Bumped at each sign-in: the notice shown before it (the refusal of the previous token) goes. */
  signIn: number;
  /** Bumped at each action elsewhere in the console (Refresh, Clear, a folder opened...): the message of the last action here goes. */
  acted: number;
  /** An action here: the console's own notice of an earlier action goes. */
  onAction: () => void;
  onChanged: () => void;
  onFailure: (error: unknown) => void;
}

type State =
  | { mode: 'loading' }
  | { mode: 'failed'; error: string }
  /** deleted: it was there and is gone now (rather than never found). */
  | { mode: 'missing'; deleted: boolean }
  | { mode: 'view'; entry: Entry }
  | { mode: 'edit'; base: Entry; text: string }
  /** base undefined: the save was meant for a key that did not exist (revision 0). */
  | { mode: 'conflict'; base: Entry | undefined; text: string; current: Entry | undefined };

export function EntryPanel({ client, entryKey, refresh, history, signIn, acted, onAction, onChanged, onFailure }: Props) {
  const [state, setState] = useState<State>({ mode: 'loading' });
  const [message, setMessage] = useState<{ text: ComponentChildren; error: boolean } | undefined>(undefined);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const current = useRef(state);
  current.current = state;
  // A conflict holds the text that was not saved ("Your version"), as the editor did: leaving it asks first, unless the
  // current version is that very text.
  useUnsaved(state.mode === 'conflict' && (state.current === undefined || state.text !== formatValue(state.current.value)));
  const heading = useRef<HTMLHeadingElement>(null);
  const editButton = useRef<HTMLButtonElement>(null);
  const conflictTitle = useRef<HTMLHeadingElement>(null);
  /** Where focus goes once the next render is on screen (the element that had it may be gone). */
  const focusNext = useRef<'heading' | 'edit' | 'conflict' | undefined>(undefined);
  useEffect(() => {
    const targets = { heading, edit: editButton, conflict: conflictTitle };
    const target = focusNext.current === undefined ? null : targets[focusNext.current].current;
    if (target !== null) {
      focusNext.current = undefined;
      target.focus();
    }
  });

  const fetchEntry = async (): Promise<Entry | undefined> => {
    try {
      return (await client.get({ key: entryKey })).entry;
    } catch (error) {
      if (reasonOf(error) === 'NOT_FOUND') return undefined;
      throw error;
    }
  };

  /** Bumped each time the entry is fetched: a History that failed is replayed then (the server may be back). */
  const [fetched, setFetched] = useState(0);

  /** `otherHistory`: what was shown is of another history of the store, so a key not found now was not deleted since. */
  const reload = async (otherHistory = false): Promise<void> => {
    try {
      const entry = await fetchEntry();
      setFetched((n) => n + 1);
      setState((before) =>
        entry !== undefined
          ? { mode: 'view', entry }
          : { mode: 'missing', deleted: !otherHistory && (before.mode === 'view' || (before.mode === 'missing' && before.deleted)) },
      );
    } catch (error) {
      const text = describeFailure(error);
      // Nothing shown yet: say why, with a Retry, rather than "Loading…" forever.
      if (current.current.mode === 'loading' || current.current.mode === 'failed') setState({ mode: 'failed', error: text });
      else setMessage({ text, error: true });
      onFailure(error);
    }
  };

  /** A new action: the message of the previous one goes, the panel's and the console's. */
  const act = (): void => {
    setMessage(undefined);
    onAction();
  };

  const retry = (): void => {
    act();
    setState({ mode: 'loading' });
    void reload();
  };

  useEffect(() => {
    setState({ mode: 'loading' });
    setMessage(undefined);
    void reload();
  }, [entryKey]);

  // Fetched again when it may have changed elsewhere; an edit in progress is left alone (its save is a compare-and-set).
  const firstRefresh = useRef(refresh);
  useEffect(() => {
    if (refresh === firstRefresh.current) return;
    const mode = current.current.mode;
    if (mode === 'view' || mode === 'missing' || mode === 'failed') void reload();
  }, [refresh]);
  const firstHistory = useRef(history);
  useEffect(() => {
    if (history === firstHistory.current) return;
    const mode = current.current.mode;
    if (mode === 'view' || mode === 'missing' || mode === 'failed') void reload(true);
  }, [history]);

  // Signed in again (the previous token was refused, the edit kept): what was said before, the refusal among it, goes
  // (in a layout effect, so it is gone before the console shows again).
  const firstSignIn = useRef(signIn);
  useLayoutEffect(() => {
    if (signIn !== firstSignIn.current) setMessage(undefined);
  }, [signIn]);
  // An action elsewhere: the message here, of an earlier action, goes with it (one action's message is shown at a time).
  const firstActed = useRef(acted);
  useEffect(() => {
    if (acted !== firstActed.current) setMessage(undefined);
  }, [acted]);

  /** A save is on its way: another (Save pressed again) is not sent, and Save is disabled until it is answered. */
  const [saving, setSaving] = useState(false);
  const savingNow = useRef(false);

  /** Saves `text` only if the key is still at `base`'s revision (0: only if it does not exist). */
  const save = async (text: string, base: Entry | undefined): Promise<void> => {
    const parsed = parseValue(text);
    if ('error' in parsed) return;
    // A second save from the same base would be refused once the first is saved, and shown as someone else's change.
    if (savingNow.current) return;
    savingNow.current = true;
    setSaving(true);
    try {
      await saveParsed(parsed.value, text, base);
    } finally {
      savingNow.current = false;
      setSaving(false);
    }
  };

  const saveParsed = async (value: Value, text: string, base: Entry | undefined): Promise<void> => {
    act();
    // A key on a lease stays on it: a Set without one would make it permanent.
    const lease = base?.lease ?? 0n;
    try {
      const { revision } = await client.set({ key: entryKey, value, expectedRevision: base?.modRevision ?? 0n, lease });
      setMessage({ text: `Saved at revision ${revision}.`, error: false });
      // The saved entry is shown at once, with the message: an editor left until the reload answers would hold text
      // that is saved but counted as not (opening another key meanwhile asked to discard it). The set was a
      // compare-and-set on `base`, so this is the entry at `revision`; the reload then shows the server's own.
      focusNext.current = 'edit';
      setState({
        mode: 'view',
        entry: create(EntrySchema, {
          key: entryKey,
          value,
          createRevision: base?.createRevision ?? revision,
          modRevision: revision,
          version: (base?.version ?? 0n) + 1n,
          lease,
        }),
      });
      onChanged();
      await reload();
    } catch (error) {
      if (reasonOf(error) === 'LEASE_NOT_FOUND') {
        setMessage({
          text: `Not saved: the key's lease ${lease} has expired (or was revoked), so the key is being deleted with it. Your text is still here.`,
          error: true,
        });
        return;
      }
      if (reasonOf(error) !== 'REVISION_MISMATCH') {
        setMessage({ text: describeFailure(error), error: true });
        onFailure(error);
        return;
      }
      let now: Entry | undefined;
      try {
        now = await fetchEntry();
      } catch (failure) {
        // Said, not left unhandled: the editor would stay as it was, saying nothing.
        setMessage({
          text: `Not saved: the entry changed since you began, and reading it again failed: ${describeFailure(failure)}. Your text is still here.`,
          error: true,
        });
        onFailure(failure);
        return;
      }
      setMessage(undefined);
      // The editor, which had focus, is gone: the conflict's heading has it, so it is read out and Tab goes to its choices.
      focusNext.current = 'conflict';
      setState({ mode: 'conflict', base, text, current: now });
    }
  };

  const remove = async (entry: Entry): Promise<void> => {
    setConfirmDelete(false);
    try {
      await client.delete({ key: entryKey, expectedRevision: entry.modRevision });
      setMessage({
        text: (
          <>
            Deleted <KeyText value={entryKey} quoted />.
          </>
        ),
        error: false,
      });
      onChanged();
      focusNext.current = 'heading';
      setState({ mode: 'missing', deleted: true });
    } catch (error) {
      const changed = reasonOf(error) === 'REVISION_MISMATCH';
      setMessage({
        text: changed ? 'Not deleted: the entry changed since it was loaded. Look at it again first.' : describeFailure(error),
        error: true,
      });
      if (changed) await reload();
      // A refused token brings up the sign-in, as a refused save does.
      else onFailure(error);
    }
  };

  return (
    <section class="entry" aria-labelledby="entry-title">
      <h2 id="entry-title" ref={heading} tabIndex={-1}>
        <code>
          <KeyText value={entryKey} />
        </code>
      </h2>
      {message !== undefined && (
        <p class={message.error ? 'error' : 'notice'} role={message.error ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
      {state.mode === 'loading' && <p aria-live="polite">Loading…</p>}
      {state.mode === 'failed' && (
        <>
          <p class="error" role="alert">
            Could not load it: {state.error}
          </p>
          <div class="actions">
            <button type="button" onClick={retry}>
              Retry
            </button>
          </div>
        </>
      )}
      {state.mode === 'missing' && <p>{state.deleted ? 'This key has been deleted.' : 'This key does not exist.'}</p>}
      {state.mode === 'view' && (
        <>
          <Revisions entry={state.entry} />
          {state.entry.lease !== 0n && (
            <Lease
              key={`${state.entry.lease}@${state.entry.modRevision}`}
              client={client}
              id={state.entry.lease}
              onExpired={() => void reload()}
              onFailure={onFailure}
              onAction={act}
            />
          )}
          <pre class="json" aria-label="Value" tabIndex={0}>
            {formatValue(state.entry.value)}
          </pre>
          <History
            client={client}
            entry={state.entry}
            fetched={fetched}
            onFailure={onFailure}
            onAction={act}
            onEditFrom={(value) => {
              act();
              setState({ mode: 'edit', base: state.entry, text: formatValue(value) });
            }}
          />
          <div class="actions">
            <button
              type="button"
              ref={editButton}
              onClick={() => {
                act();
                setState({ mode: 'edit', base: state.entry, text: formatValue(state.entry.value) });
              }}
            >
              Edit
            </button>
            <button
              type="button"
              onClick={() => {
                act();
                void reload();
              }}
            >
              Reload
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => {
                act();
                setConfirmDelete(true);
              }}
            >
              Delete…
            </button>
          </div>
          {confirmDelete && (
            <ConfirmDialog
              title={
                <>
                  Delete <KeyText value={entryKey} quoted />?
                </>
              }
              confirmLabel="Delete"
              onConfirm={() => void remove(state.entry)}
              onCancel={() => setConfirmDelete(false)}
            >
              <p>The entry at revision {String(state.entry.modRevision)} will be removed. If it has changed since, nothing is deleted.</p>
            </ConfirmDialog>
          )}
        </>
      )}
      {state.mode === 'edit' && (
        <JsonEditor
          label={
            <>
              Value of <KeyText value={entryKey} quoted /> (JSON)
            </>
          }
          text={state.text}
          onText={(text) => setState({ ...state, text })}
          onSave={() => void save(state.text, state.base)}
          onCancel={() => {
            act();
            focusNext.current = 'edit';
            setState({ mode: 'view', entry: state.base });
          }}
          unsaved={state.text !== formatValue(state.base.value)}
          saving={saving}
          saveLabel={`Save (if still at revision ${state.base.modRevision})`}
        />
      )}
      {state.mode === 'conflict' && (
        <div class="conflict" role="group" aria-labelledby="conflict-title">
          <h3 id="conflict-title" ref={conflictTitle} tabIndex={-1}>
            Someone else changed this entry while you were editing
          </h3>
          <p>
            {state.base === undefined
              ? 'You saved it as a new entry (it had been deleted).'
              : `You started from revision ${state.base.modRevision}.`}{' '}
            {state.current === undefined
              ? state.base !== undefined && state.base.lease !== 0n
                ? `It has since been deleted (its lease ${state.base.lease} expired or was revoked).`
                : 'It has since been deleted.'
              : state.base === undefined
                ? `It has since been created again, at revision ${state.current.modRevision}.`
                : `It is now at revision ${state.current.modRevision}.`}{' '}
            Nothing of yours was saved. Choose which version to keep.
          </p>
          <div class="side-by-side">
            <figure>
              <figcaption>Your version</figcaption>
              <pre class="json" tabIndex={0}>
                {showJson(state.text)}
              </pre>
            </figure>
            <figure>
              <figcaption>
                {state.current === undefined ? 'Current: deleted' : `Current version (revision ${state.current.modRevision})`}
              </figcaption>
              <pre class="json" tabIndex={0}>
                {state.current === undefined ? '(no entry)' : formatValue(state.current.value)}
              </pre>
            </figure>
          </div>
          <div class="actions">
            <button type="button" disabled={saving} onClick={() => void save(state.text, state.current)}>
              {state.current === undefined ? 'Keep mine (create it again)' : `Keep mine (overwrite revision ${state.current.modRevision})`}
            </button>
            <button
              type="button"
              onClick={() => {
                act();
                focusNext.current = state.current === undefined ? 'heading' : 'edit';
                setState(state.current === undefined ? { mode: 'missing', deleted: true } : { mode: 'view', entry: state.current });
              }}
            >
              Keep theirs (discard mine)
            </button>
            {state.current !== undefined && (
              <button
                type="button"
                onClick={() => {
                  act();
                  setState({ mode: 'edit', base: state.current!, text: state.text });
                }}
              >
                Edit mine further
              </button>
            )}
          </div>
        </div>
      )}
    </section>
  );
}

function Revisions({ entry }: { entry: Entry }) {
  return (
    <dl class="revisions">
      <dt>Revision</dt>
      <dd>{String(entry.modRevision)}</dd>
      <dt>Created at revision</dt>
      <dd>{String(entry.createRevision)}</dd>
      <dt>Version</dt>
      <dd>{String(entry.version)}</dd>
    </dl>
  );
}

interface Version {
  revision: bigint;
  value: Value | undefined;
}

/**
 * The entry's earlier versions, replayed by Watch from the revision that
 * created it up to the one shown (as far back as the server's change
 * history goes), newest first. A replay that failed says so in place, with
 * Retry, and is replayed again when the entry is fetched again (Reload, the
 * live view back after the server was away); a refused token brings up the
 * sign-in too, and the versions are replayed again once signed in (a new
 * client).
 */
function History({
  client,
  entry,
  fetched,
  onEditFrom,
  onFailure,
  onAction,
}: {
  client: KvClient;
  entry: Entry;
  /** Bumped each time the entry is fetched (at the same revision, the replay is otherwise not asked for again). */
  fetched: number;
  onEditFrom: (value: Value | undefined) => void;
  onFailure: (error: unknown) => void;
  /** Retry pressed: an action, so the messages of earlier ones go (as for the entry's other actions). */
  onAction: () => void;
}) {
  const [versions, setVersions] = useState<Version[] | undefined>(undefined);
  const [note, setNote] = useState('');
  /** Bumped to replay again (Retry, or the entry fetched again after a replay that failed). */
  const [attempt, setAttempt] = useState(0);
  /** The last replay failed (a ref: read by the effect below in the same commit as the replay's own effect clears it). */
  const failed = useRef(false);
  useEffect(() => {
    const abort = new AbortController();
    failed.current = false;
    setVersions(undefined);
    setNote('');
    const replay = async (from: bigint): Promise<Version[]> => {
      const found: Version[] = [];
      const target = { case: 'key' as const, value: entry.key };
      for await (const message of client.watch({ target, startRevision: from }, { signal: abort.signal })) {
        for (const event of message.events) {
          if (event.type === EventType.PUT && event.entry !== undefined && event.entry.modRevision <= entry.modRevision) {
            found.push({ revision: event.entry.modRevision, value: event.entry.value });
          }
        }
        if (message.revision >= entry.modRevision) break;
      }
      return found.reverse();
    };
    replay(entry.createRevision)
      .catch(async (error: unknown) => {
        const oldest = error instanceof ConnectError ? error.metadata.get('kv-oldest-revision') : null;
        if (reasonOf(error) !== 'COMPACTED' || oldest === null) throw error;
        setNote(`Versions before revision ${oldest} are no longer kept.`);
        return replay(BigInt(oldest));
      })
      .then(
        (found) => {
          if (!abort.signal.aborted) setVersions(found);
        },
        (error: unknown) => {
          if (abort.signal.aborted) return;
          failed.current = true;
          setNote(`History unavailable: ${describeFailure(error)}.`);
          onFailure(error);
        },
      );
    return () => abort.abort();
  }, [entry.key, entry.modRevision, client, attempt]);
  // The entry fetched again (Reload, the live view back after the server was away): a replay that failed is tried
  // again; one that worked is left as it is.
  const firstFetched = useRef(fetched);
  useEffect(() => {
    if (fetched !== firstFetched.current && failed.current) setAttempt((n) => n + 1);
  }, [fetched]);
  return (
    <details class="history">
      <summary>History{versions === undefined ? '' : ` (${versions.length} version${versions.length === 1 ? '' : 's'})`}</summary>
      {note !== '' && (
        <p class="notice">
          {note}
          {failed.current && (
            <>
              {' '}
              <button
                type="button"
                class="link"
                onClick={() => {
                  onAction();
                  setAttempt((n) => n + 1);
                }}
              >
                Retry
              </button>
            </>
          )}
        </p>
      )}
      {versions === undefined && note === '' && <p aria-live="polite">Loading…</p>}
      {versions !== undefined && (
        <ol class="versions" aria-label="Versions, newest first">
          {versions.map((version) => (
            <li key={String(version.revision)}>
              <span class="revision">revision {String(version.revision)}</span>
              <ListedValue listed={listedValue(version.value)} />
              {version.revision !== entry.modRevision && (
                <button type="button" class="link" onClick={() => onEditFrom(version.value)}>
                  Edit from this version
                </button>
              )}
            </li>
          ))}
        </ol>
      )}
    </details>
  );
}

/**
 * The lease a key is attached to: the key is deleted when it expires. The
 * time left counts down each second from LeaseInfo's answer; at 0 the
 * lease is asked about again and the entry fetched again (it is gone when
 * the lease is). A lookup that failed otherwise (the server restarting, the
 * network) says so, with Retry; a refused token brings up the sign-in, and
 * the lease is asked about again once signed in (a new client).
 */
function Lease({
  client,
  id,
  onExpired,
  onFailure,
  onAction,
}: {
  client: KvClient;
  id: bigint;
  onExpired: () => void;
  onFailure: (error: unknown) => void;
  /** Retry pressed: an action, so the messages of earlier ones go (as for the entry's other actions). */
  onAction: () => void;
}) {
  const [info, setInfo] = useState<{ granted: bigint; until: number } | 'gone' | { failed: string } | undefined>(undefined);
  const [now, setNow] = useState(() => Date.now());
  const asking = useRef(false);
  const ask = (): void => {
    if (asking.current) return;
    asking.current = true;
    client.leaseInfo({ id }).then(
      (lease) => {
        asking.current = false;
        setNow(Date.now());
        setInfo({ granted: lease.grantedTtlMs, until: Date.now() + Number(lease.remainingTtlMs) });
      },
      (error: unknown) => {
        asking.current = false;
        if (reasonOf(error) === 'LEASE_NOT_FOUND') {
          setInfo('gone');
          onExpired();
        } else {
          setInfo({ failed: describeFailure(error) });
          onFailure(error);
        }
      },
    );
  };
  useEffect(ask, [id, client]);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  // At 0 (or while it is gone and the key is still shown), ask again.
  const remaining = info === undefined || info === 'gone' || 'failed' in info ? undefined : Math.max(0, info.until - now);
  useEffect(() => {
    if (remaining === 0) ask();
    else if (info === 'gone') onExpired();
  }, [now]);
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return (
    <p class="lease">
      On lease {String(id)}:{' '}
      {info === undefined ? (
        '…'
      ) : info === 'gone' || remaining === 0 ? (
        'expired or revoked; the key is being removed.'
      ) : 'failed' in info ? (
        <>
          could not look it up: {info.failed}.{' '}
          <button
            type="button"
            class="link"
            onClick={() => {
              onAction();
              ask();
            }}
          >
            Retry
          </button>
        </>
      ) : (
        `deleted when it expires, in ${seconds(Math.ceil((remaining ?? 0) / 1000) * 1000)} (time to live ${seconds(Number(info.granted))}).`
      )}
    </p>
  );
}

/** How many editors (or conflicts) on screen hold text not saved yet. */
let unsavedEditors = 0;

/** Whether leaving the entry shown would lose an edit that was not saved. */
export function editInProgress(): boolean {
  return unsavedEditors > 0;
}

/** While `unsaved` holds, text on screen is not saved: opening something else (editInProgress) or leaving the page asks first. */
function useUnsaved(unsaved: boolean): void {
  // A layout effect: it runs as the text changes, not after the next frame (which a background tab may not draw for a while).
  useLayoutEffect(() => {
    if (!unsaved) return;
    const warn = (event: BeforeUnloadEvent): void => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    unsavedEditors++;
    return () => {
      unsavedEditors--;
      window.removeEventListener('beforeunload', warn);
    };
  }, [unsaved]);
}

interface EditorProps {
  label: ComponentChildren;
  text: string;
  onText: (text: string) => void;
  onSave: () => void;
  onCancel: () => void;
  saveLabel: string;
  /** Focus the text on mount (default true). */
  focus?: boolean;
  /** The text differs from what was loaded: leaving the page asks first. */
  unsaved?: boolean;
  /** A save (or create) is on its way: Save is disabled, and Ctrl+Enter does nothing, until it is answered. */
  saving?: boolean;
}

/** A JSON text area that says what is wrong as you type; Ctrl+Enter saves. */
export function JsonEditor({
  label,
  text,
  onText,
  onSave,
  onCancel,
  saveLabel,
  focus = true,
  unsaved = true,
  saving = false,
}: EditorProps) {
  const parsed = parseValue(text);
  const invalid = 'error' in parsed;
  const canSave = !invalid && !saving;
  const area = useRef<HTMLTextAreaElement>(null);
  // autofocus works only on the page's first load: focus it when it appears.
  useEffect(() => {
    if (focus) area.current?.focus();
  }, []);
  useUnsaved(unsaved);
  return (
    <form
      class="editor"
      onSubmit={(event) => {
        event.preventDefault();
        if (canSave) onSave();
      }}
    >
      <label for="value-editor">{label}</label>
      <textarea
        ref={area}
        id="value-editor"
        spellcheck={false}
        rows={14}
        value={text}
        aria-invalid={invalid}
        // Not editable while a save is on its way: once saved, the entry is shown, and what was typed meanwhile would go.
        readOnly={saving}
        aria-describedby="value-check"
        onInput={(event) => onText(event.currentTarget.value)}
        onKeyDown={(event) => {
          if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !invalid) {
            event.preventDefault();
            if (canSave) onSave();
          }
        }}
      />
      <p id="value-check" class={invalid ? 'error' : 'notice'} aria-live="polite">
        {invalid ? parsed.error : 'Valid JSON.'}
      </p>
      <div class="actions">
        <button type="submit" disabled={!canSave}>
          {saveLabel}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
