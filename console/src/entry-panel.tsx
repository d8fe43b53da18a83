/**
 * One entry: its value as formatted JSON with its revisions; editing with
 * JSON validation; a save that is a compare-and-set on the revision the
 * edit started from. When someone else wrote in between, both versions are
 * shown and the person chooses.
 */
import { useEffect, useState } from 'preact/hooks';
import { ConfirmDialog } from './confirm-dialog';
import { ConnectError } from '@connectrpc/connect';
import type { Value } from '@bufbuild/protobuf/wkt';
import { type Entry, EventType } from './gen/kv/v1/kv_pb';
import { compactValue, describeFailure, formatValue, type KvClient, parseValue, reasonOf } from './kv';

interface Props {
  client: KvClient;
  entryKey: string;
  onChanged: () => void;
  onFailure: (error: unknown) => void;
}

type State =
  | { mode: 'loading' }
  | { mode: 'missing' }
  | { mode: 'view'; entry: Entry }
  | { mode: 'edit'; base: Entry; text: string }
  | { mode: 'conflict'; base: Entry; text: string; current: Entry | undefined };

export function EntryPanel({ client, entryKey, onChanged, onFailure }: Props) {
  const [state, setState] = useState<State>({ mode: 'loading' });
  const [message, setMessage] = useState<{ text: string; error: boolean } | undefined>(undefined);
  const [confirmDelete, setConfirmDelete] = useState(false);

  const fetchEntry = async (): Promise<Entry | undefined> => {
    try {
      return (await client.get({ key: entryKey })).entry;
    } catch (error) {
      if (reasonOf(error) === 'NOT_FOUND') return undefined;
      throw error;
    }
  };

  const reload = async (): Promise<void> => {
    try {
      const entry = await fetchEntry();
      setState(entry === undefined ? { mode: 'missing' } : { mode: 'view', entry });
    } catch (error) {
      setMessage({ text: describeFailure(error), error: true });
      onFailure(error);
    }
  };

  useEffect(() => {
    setState({ mode: 'loading' });
    setMessage(undefined);
    void reload();
  }, [entryKey]);

  /** Saves `text` only if the key is still at `base`'s revision (0: only if it does not exist). */
  const save = async (text: string, base: Entry | undefined): Promise<void> => {
    const parsed = parseValue(text);
    if ('error' in parsed) return;
    try {
      const { revision } = await client.set({ key: entryKey, value: parsed.value, expectedRevision: base?.modRevision ?? 0n });
      setMessage({ text: `Saved at revision ${revision}.`, error: false });
      onChanged();
      await reload();
    } catch (error) {
      if (reasonOf(error) !== 'REVISION_MISMATCH') {
        setMessage({ text: describeFailure(error), error: true });
        onFailure(error);
        return;
      }
      const current = await fetchEntry();
      setMessage(undefined);
      setState({ mode: 'conflict', base: base ?? current!, text, current });
    }
  };

  const remove = async (entry: Entry): Promise<void> => {
    setConfirmDelete(false);
    try {
      await client.delete({ key: entryKey, expectedRevision: entry.modRevision });
      setMessage({ text: `Deleted ${entryKey}.`, error: false });
      onChanged();
      setState({ mode: 'missing' });
    } catch (error) {
      const changed = reasonOf(error) === 'REVISION_MISMATCH';
      setMessage({
        text: changed ? 'Not deleted: the entry changed since it was loaded. Look at it again first.' : describeFailure(error),
        error: true,
      });
      if (changed) await reload();
    }
  };

  return (
    <section class="entry" aria-labelledby="entry-title">
      <h2 id="entry-title">
        <code>{entryKey}</code>
      </h2>
      {message !== undefined && (
        <p class={message.error ? 'error' : 'notice'} role={message.error ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
      {state.mode === 'loading' && <p aria-live="polite">Loading…</p>}
      {state.mode === 'missing' && <p>This key does not exist (any more).</p>}
      {state.mode === 'view' && (
        <>
          <Revisions entry={state.entry} />
          {state.entry.lease !== 0n && <Lease client={client} id={state.entry.lease} />}
          <pre class="json" aria-label="Value" tabIndex={0}>
            {formatValue(state.entry.value)}
          </pre>
          <History
            client={client}
            entry={state.entry}
            onEditFrom={(value) => setState({ mode: 'edit', base: state.entry, text: formatValue(value) })}
          />
          <div class="actions">
            <button type="button" onClick={() => setState({ mode: 'edit', base: state.entry, text: formatValue(state.entry.value) })}>
              Edit
            </button>
            <button type="button" onClick={() => void reload()}>
              Reload
            </button>
            <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
              Delete…
            </button>
          </div>
          {confirmDelete && (
            <ConfirmDialog
              title={`Delete ${entryKey}?`}
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
          label={`Value of ${entryKey} (JSON)`}
          text={state.text}
          onText={(text) => setState({ ...state, text })}
          onSave={() => void save(state.text, state.base)}
          onCancel={() => setState({ mode: 'view', entry: state.base })}
          saveLabel={`Save (if still at revision ${state.base.modRevision})`}
        />
      )}
      {state.mode === 'conflict' && (
        <div class="conflict" role="group" aria-labelledby="conflict-title">
          <h3 id="conflict-title">Someone else changed this entry while you were editing</h3>
          <p>
            You started from revision {String(state.base.modRevision)}.{' '}
            {state.current === undefined ? 'It has since been deleted.' : `It is now at revision ${state.current.modRevision}.`} Nothing of
            yours was saved. Choose which version to keep.
          </p>
          <div class="side-by-side">
            <figure>
              <figcaption>Your version</figcaption>
              <pre class="json" tabIndex={0}>
                {state.text}
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
            <button type="button" onClick={() => void save(state.text, state.current)}>
              Keep mine (overwrite revision {state.current === undefined ? 'none' : String(state.current.modRevision)})
            </button>
            <button
              type="button"
              onClick={() => setState(state.current === undefined ? { mode: 'missing' } : { mode: 'view', entry: state.current })}
            >
              Keep theirs (discard mine)
            </button>
            {state.current !== undefined && (
              <button type="button" onClick={() => setState({ mode: 'edit', base: state.current!, text: state.text })}>
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
 * history goes), newest first.
 */
function History({ client, entry, onEditFrom }: { client: KvClient; entry: Entry; onEditFrom: (value: Value | undefined) => void }) {
  const [versions, setVersions] = useState<Version[] | undefined>(undefined);
  const [note, setNote] = useState('');
  useEffect(() => {
    const abort = new AbortController();
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
          if (!abort.signal.aborted) setNote(`History unavailable: ${describeFailure(error)}`);
        },
      );
    return () => abort.abort();
  }, [entry.key, entry.modRevision]);
  return (
    <details class="history">
      <summary>History{versions === undefined ? '' : ` (${versions.length} version${versions.length === 1 ? '' : 's'})`}</summary>
      {note !== '' && <p class="notice">{note}</p>}
      {versions === undefined && note === '' && <p aria-live="polite">Loading…</p>}
      {versions !== undefined && (
        <ol class="versions" aria-label="Versions, newest first">
          {versions.map((version) => (
            <li key={String(version.revision)}>
              <span class="revision">revision {String(version.revision)}</span>
              <code>{compactValue(version.value)}</code>
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

/** The lease a key is attached to: the key is deleted when it expires. */
function Lease({ client, id }: { client: KvClient; id: bigint }) {
  const [info, setInfo] = useState<{ granted: bigint; remaining: bigint } | 'gone' | undefined>(undefined);
  useEffect(() => {
    client.leaseInfo({ id }).then(
      (lease) => setInfo({ granted: lease.grantedTtlMs, remaining: lease.remainingTtlMs }),
      () => setInfo('gone'),
    );
  }, [id]);
  const seconds = (ms: bigint): string => `${(Number(ms) / 1000).toFixed(Number(ms) < 10_000 ? 1 : 0)} s`;
  return (
    <p class="lease">
      On lease {String(id)}:{' '}
      {info === undefined
        ? '…'
        : info === 'gone'
          ? 'expired or revoked; the key is being removed.'
          : `deleted when it expires, in ${seconds(info.remaining)} (time to live ${seconds(info.granted)}).`}
    </p>
  );
}

interface EditorProps {
  label: string;
  text: string;
  onText: (text: string) => void;
  onSave: () => void;
  onCancel: () => void;
  saveLabel: string;
}

/** A JSON text area that says what is wrong as you type; Ctrl+Enter saves. */
export function JsonEditor({ label, text, onText, onSave, onCancel, saveLabel }: EditorProps) {
  const parsed = parseValue(text);
  const invalid = 'error' in parsed;
  return (
    <form
      class="editor"
      onSubmit={(event) => {
        event.preventDefault();
        if (!invalid) onSave();
      }}
    >
      <label for="value-editor">{label}</label>
      <textarea
        id="value-editor"
        spellcheck={false}
        rows={14}
        value={text}
        aria-invalid={invalid}
        aria-describedby="value-check"
        onInput={(event) => onText(event.currentTarget.value)}
        onKeyDown={(event) => {
          if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !invalid) {
            event.preventDefault();
            onSave();
          }
        }}
        autofocus
      />
      <p id="value-check" class={invalid ? 'error' : 'notice'} aria-live="polite">
        {invalid ? parsed.error : 'Valid JSON.'}
      </p>
      <div class="actions">
        <button type="submit" disabled={invalid}>
          {saveLabel}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
