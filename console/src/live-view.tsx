/**
 * Follows a prefix through Watch: every change as it commits, newest first
 * (the last 200), and the revision the view is current to.
 */
import { useEffect, useState } from 'preact/hooks';
import { EventType } from './gen/kv/v1/kv_pb';
import { compactValue, describeFailure, type KvClient } from './kv';

const KEPT = 200;

interface Props {
  client: KvClient;
  prefix: string;
  onFailure: (error: unknown) => void;
}

interface Row {
  id: string;
  type: 'put' | 'delete';
  key: string;
  revision: bigint;
  value: string;
}

export function LiveView({ client, prefix, onFailure }: Props) {
  const [rows, setRows] = useState<Row[]>([]);
  const [current, setCurrent] = useState<bigint | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  useEffect(() => {
    const abort = new AbortController();
    setRows([]);
    setCurrent(undefined);
    setError(undefined);
    void (async () => {
      try {
        for await (const message of client.watch({ target: { case: 'prefix', value: prefix } }, { signal: abort.signal })) {
          setCurrent(message.revision);
          if (message.events.length === 0) continue;
          const added = message.events.map((event, i): Row => ({
            id: `${message.revision}:${i}`,
            type: event.type === EventType.DELETE ? 'delete' : 'put',
            key: event.entry?.key ?? '',
            revision: event.entry?.modRevision ?? message.revision,
            value: compactValue(event.entry?.value),
          }));
          setRows((before) => [...added.reverse(), ...before].slice(0, KEPT));
        }
      } catch (failure) {
        if (abort.signal.aborted) return;
        setError(describeFailure(failure));
        onFailure(failure);
      }
    })();
    return () => abort.abort();
  }, [prefix]);

  return (
    <section class="live" aria-labelledby="live-title">
      <h2 id="live-title">Live: {prefix === '' ? 'all keys' : prefix}</h2>
      <p class="notice" role="status">
        {error !== undefined ? '' : current === undefined ? 'Waiting for changes…' : `Following; current to revision ${current}.`}
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
          {rows.map((row) => (
            <tr key={row.id}>
              <td>{String(row.revision)}</td>
              <td class={row.type}>{row.type === 'put' ? 'set' : 'deleted'}</td>
              <td>
                <code>{row.key}</code>
              </td>
              <td>
                <code>{row.value}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <p>No changes yet. Changes made from here on appear at the top.</p>}
    </section>
  );
}
