/**
 * A key in the page: each character a person could not see as itself
 * (a control, a bidi control, a zero-width character) is shown as its
 * escape (\u202e), marked apart from text that merely looks like one, and
 * the whole is a left-to-right isolate, so a key neither reorders itself
 * nor the text around it.
 */
import { keyParts, needsQuotes } from './kv';

interface Props {
  value: string;
  /** In running text: quoted when spaces at either end (or nothing at all) would otherwise be invisible. */
  quoted?: boolean;
}

export function KeyText({ value, quoted = false }: Props) {
  const quote = quoted && needsQuotes(value) ? '"' : '';
  return (
    <bdi dir="ltr" class="key-text">
      {quote}
      {keyParts(value).map((part, i) =>
        part.escaped ? (
          <span key={i} class="escape">
            {part.text}
          </span>
        ) : (
          part.text
        ),
      )}
      {quote}
    </bdi>
  );
}
