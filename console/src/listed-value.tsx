/** A value in a list (the live view, History): on one line, and said to be cut where it is longer than a list shows. */
import type { Listed } from './kv';

export function ListedValue({ listed: { text, length } }: { listed: Listed }) {
  return (
    <code>
      {text}
      {length !== undefined && (
        <span class="cut">
          … (the first {text.length} of {length} characters)
        </span>
      )}
    </code>
  );
}
