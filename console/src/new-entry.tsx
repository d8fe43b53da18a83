/** Creates a key that does not exist yet (a Set with expected_revision 0, so nothing is overwritten). */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { JsonEditor } from './entry-panel';
import { KeyText } from './key-text';
import { describeFailure, type KvClient, parseValue, reasonOf } from './kv';

interface Props {
  client: KvClient;
  prefix: string;
  /** Bumped at each sign-in: the error shown before it (the refusal of the previous token) goes. */
  signIn: number;
  onCreated: (key: string) => void;
  onCancel: () => void;
  onFailure: (error: unknown) => void;
}

export function NewEntry({ client, prefix, signIn, onCreated, onCancel, onFailure }: Props) {
  const [key, setKey] = useState(prefix);
  const [text, setText] = useState('{}');
  const [error, setError] = useState<ComponentChildren | undefined>(undefined);
  const keyField = useRef<HTMLInputElement>(null);
  // The key comes first (it starts as the prefix shown): focus it, after the prefix.
  useEffect(() => keyField.current?.focus(), []);
  // Signed in again: the refusal of the previous token goes (before the console shows again).
  const firstSignIn = useRef(signIn);
  useLayoutEffect(() => {
    if (signIn !== firstSignIn.current) setError(undefined);
  }, [signIn]);

  /** A create is on its way: Create again is not sent (it would find the key it made, and say it already exists). */
  const [saving, setSaving] = useState(false);
  const savingNow = useRef(false);

  const create = async (): Promise<void> => {
    const parsed = parseValue(text);
    if ('error' in parsed) return;
    if (key === '') {
      setError('Enter a key.');
      return;
    }
    if (savingNow.current) return;
    savingNow.current = true;
    setSaving(true);
    try {
      await client.set({ key, value: parsed.value, expectedRevision: 0n });
      onCreated(key);
    } catch (failure) {
      setError(
        reasonOf(failure) === 'REVISION_MISMATCH' ? (
          <>
            <KeyText value={key} quoted /> already exists: open it to edit it.
          </>
        ) : (
          describeFailure(failure)
        ),
      );
      onFailure(failure);
    } finally {
      savingNow.current = false;
      setSaving(false);
    }
  };

  return (
    <section class="entry" aria-labelledby="new-title">
      <h2 id="new-title">New key</h2>
      <label for="new-key">Key</label>
      <input id="new-key" ref={keyField} class="key-text" value={key} onInput={(event) => setKey(event.currentTarget.value)} />
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <JsonEditor
        label="Value (JSON)"
        text={text}
        onText={setText}
        onSave={() => void create()}
        onCancel={onCancel}
        saveLabel="Create"
        saving={saving}
        focus={false}
        unsaved={text !== '{}' || key !== prefix}
      />
    </section>
  );
}
