/**
 * Follows a prefix through Watch: every change as it commits, newest first
 * (the last 200), and the revision the view is current to. When the stream
 * breaks (a server restart, the network), it watches again with backoff
 * from the revision after the last one it saw, so no change is shown twice
 * or missed; changes the server no longer keeps are named as a gap. A
 * server whose store has another history than the one followed (another
 * history id in a stream's first message: restored from a backup, so its
 * revisions may name other changes) is named too, and the view follows the
 * new history from its current revision, not from the old one's; the app
 * then fetches the keys and the entry it shows again.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Code, ConnectError } from '@connectrpc/connect';
import { EventType, type Event } from './gen/kv/v1/kv_pb';
import { KeyText } from './key-text';
import { describeFailure, isTransient, isUnauthenticated, type KvClient, type Listed, listedValue, reasonOf } from './kv';
import { ListedValue } from './listed-value';

const KEPT = 200;
/** Waits between attempts to watch again: doubling from the first, at most the last. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 4000;

interface Props {
  client: KvClient;
  prefix: string;
  onFailure: (error: unknown) => void;
  /** Each change as it is shown (the app refreshes an entry shown elsewhere). */
  onEvents?: (events: Event[]) => void;
  /** The store turned out to have another history (the app fetches the keys and the entry it shows again). */
  onHistoryChanged?: () => void;
  /** Watching again after the stream broke (the server is back): the app lists the keys and fetches the open entry again, which may have failed meanwhile. */
  onReconnected?: () => void;
}

interface Row {
  id: string;
  type: 'put' | 'delete' | 'gap';
  key: string;
  revision: bigint;
  /** A change's value as a list shows it (cut: 200 rows of 1 MiB values are not kept). */
  value?: Listed;
  /** A gap's message. */
  text?: string;
}

export function LiveView({ client, prefix, onFailure, onEvents, onHistoryChanged, onReconnected }: Props) {
  const [rows, setRows] = useState<Row[]>([]);
  const [current, setCurrent] = useState<bigint | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [reconnecting, setReconnecting] = useState<string | undefined>(undefined);
  // The client of the latest token: after a sign-in the watch goes on with it, from where it was.
  const latest = useRef(client);
  latest.current = client;
  // And the latest callbacks (they see the entry open now, not the one open when the watch began).
  const handlers = useRef({ onFailure, onEvents, onHistoryChanged, onReconnected });
  handlers.current = { onFailure, onEvents, onHistoryChanged, onReconnected };

  useEffect(() => {
    const abort = new AbortController();
    setRows([]);
    setCurrent(undefined);
    setError(undefined);
    setReconnecting(undefined);
    /** Every matching change up to this revision has been shown (undefined: not started yet). */
    let seen: bigint | undefined;
    /** The id of the store history the shown revisions are of (a stream's first message says it; undefined until one did). */
    let followed: string | undefined;
    /** How many times the store's history changed under the view (for the rows' ids). */
    let histories = 0;
    let wait = FIRST_RETRY_MS;
    /** The stream broke and no message has come since. */
    let lost = false;
    const sleep = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        abort.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    const add = (added: Row[]): void => setRows((before) => [...added.reverse(), ...before].slice(0, KEPT));

    void (async () => {
      while (!abort.signal.aborted) {
        let why: string;
        const using = latest.current;
        // This stream's own signal: it is cancelled when the view goes, or when its server turns out to have another history.
        const stream = new AbortController();
        const cancel = (): void => stream.abort();
        abort.signal.addEventListener('abort', cancel, { once: true });
        /** The revision a server with another history than the one followed is at (its stream's first message says). */
        let otherHistoryAt: bigint | undefined;
        try {
          const startRevision = seen === undefined ? 0n : seen + 1n;
          let first = true;
          for await (const message of using.watch(
            { target: { case: 'prefix', value: prefix }, startRevision },
            { signal: stream.signal },
          )) {
            wait = FIRST_RETRY_MS;
            setReconnecting(undefined);
            if (lost) {
              lost = false;
              handlers.current.onReconnected?.();
            }
            if (first) {
              first = false;
              // Another history id than the one followed (or, where the server sends none, a revision before one shown):
              // the server's revisions may name other changes than the ones shown, so resuming by revision would hide
              // some and show others as if they followed them.
              const id = message.historyId;
              if (id !== '' ? followed !== undefined && id !== followed : seen !== undefined && message.revision < seen) {
                otherHistoryAt = message.revision;
              }
              if (id !== '') followed = id;
              if (otherHistoryAt !== undefined) break;
            }
            // Events at or before what was shown (none should come, resuming from seen + 1) are not shown again.
            const fresh = message.events.filter((event) => seen === undefined || (event.entry?.modRevision ?? message.revision) > seen);
            if (seen === undefined || message.revision > seen) seen = message.revision;
            setCurrent(seen);
            if (fresh.length === 0) continue;
            add(
              fresh.map((event, i): Row => ({
                id: `${message.revision}:${event.entry?.key ?? ''}:${i}`,
                type: event.type === EventType.DELETE ? 'delete' : 'put',
                key: event.entry?.key ?? '',
                revision: event.entry?.modRevision ?? message.revision,
                value: listedValue(event.entry?.value),
              })),
            );
            handlers.current.onEvents?.(fresh);
          }
          if (otherHistoryAt !== undefined) {
            // The rows shown are the old history's: say so above them, and follow the new one from where its server said it is.
            histories++;
            add([
              {
                id: `history:${histories}`,
                type: 'gap',
                key: '',
                revision: otherHistoryAt,
                text:
                  `The server's store now has another history (restored from a backup, say; it is at revision ${otherHistoryAt}): ` +
                  'the changes below are of the old one, and their revisions may now name other changes. Following the new history from here.',
              },
            ]);
            // From the revision that stream's first message was current to: nothing of the new history after it is missed.
            seen = otherHistoryAt;
            setCurrent(undefined);
            handlers.current.onHistoryChanged?.();
            continue;
          }
          why = 'the stream ended';
        } catch (failure) {
          if (abort.signal.aborted) return;
          const oldest = failure instanceof ConnectError ? failure.metadata.get('kv-oldest-revision') : null;
          if (reasonOf(failure) === 'COMPACTED' && oldest !== null && seen !== undefined) {
            // The changes after `seen` and before `oldest` are gone from the server's history: say so, and go on from there.
            const from = seen + 1n;
            const to = BigInt(oldest) - 1n;
            add([
              {
                id: `gap:${from}`,
                type: 'gap',
                key: '',
                revision: from,
                text: `Changes between revision ${from} and ${to} cannot be shown: the server no longer keeps them.`,
              },
            ]);
            seen = to;
            continue;
          }
          const resume = failure instanceof ConnectError ? failure.metadata.get('kv-resume-revision') : null;
          if (reasonOf(failure) === 'WATCH_TOO_SLOW' && resume !== null) {
            // Read too slowly (a busy tab): every change before `resume` was sent; go on from there at once.
            seen = BigInt(resume) - 1n;
            continue;
          }
          if (isUnauthenticated(failure)) {
            // The token was refused: the sign-in shows; go on once there is another one (trying this one again would only
            // count against the address's failed authentications).
            handlers.current.onFailure(failure);
            setReconnecting('signed out');
            while (!abort.signal.aborted && latest.current === using) await sleep(500);
            continue;
          }
          if (!isTransient(failure) || (failure instanceof ConnectError && failure.code === Code.OutOfRange)) {
            setReconnecting(undefined);
            setError(describeFailure(failure));
            handlers.current.onFailure(failure);
            return;
          }
          why = describeFailure(failure);
        } finally {
          abort.signal.removeEventListener('abort', cancel);
          stream.abort();
        }
        if (abort.signal.aborted) return;
        lost = true;
        setReconnecting(why);
        await sleep(wait);
        wait = Math.min(wait * 2, MAX_RETRY_MS);
      }
    })();
    return () => abort.abort();
  }, [prefix]);

  return (
    <section class="live" aria-labelledby="live-title">
      <h2 id="live-title">Live: {prefix === '' ? 'all keys' : <KeyText value={prefix} quoted />}</h2>
      <p class="notice" role="status">
        {error !== undefined
          ? ''
          : reconnecting !== undefined
            ? `Connection lost: ${reconnecting}; reconnecting…${current === undefined ? '' : ` Shown up to revision ${current}; nothing after it will be missed.`}`
            : current === undefined
              ? 'Waiting for changes…'
              : `Following; current to revision ${current}.`}
      </p>
      {error !== undefined && (
        <p class="error" role="alert">
          The watch ended: {error}
        </p>
      )}
      <table>
        <caption class="visually-hidden">Changes, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Revision</th>
            <th scope="col">Change</th>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody aria-live="polite">
          {rows.map((row) =>
            row.type === 'gap' ? (
              <tr key={row.id} class="gap">
                <td colSpan={4} role="alert">
                  {row.text}
                </td>
              </tr>
            ) : (
              <tr key={row.id}>
                <td>{String(row.revision)}</td>
                <td class={row.type}>{row.type === 'put' ? 'set' : 'deleted'}</td>
                <td class="key">
                  <code>
                    <KeyText value={row.key} />
                  </code>
                </td>
                <td>{row.value !== undefined && <ListedValue listed={row.value} />}</td>
              </tr>
            ),
          )}
        </tbody>
      </table>
      {rows.length === 0 && <p>No changes yet. Changes made from here on appear at the top.</p>}
    </section>
  );
}
