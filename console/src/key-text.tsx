/**
 * A key in the page, as keyParts writes it: each character a person could
 * not see as itself (a control, a bidi control, a zero-width character) is
 * shown as its escape (\u202e), marked apart, in a key then quoted as a
 * JSON string, so that text which merely reads like an escape is told apart
 * by what it says, not only by its look; its accessible name (shownKey)
 * says the same. The whole is a left-to-right isolate, so a key neither
 * reorders itself nor the text around it.
 */
import { keyParts, shownKey } from './kv';

interface Props {
  value: string;
  /** In running text: quoted as well when spaces at either end (or nothing at all) would otherwise be invisible. */
  quoted?: boolean;
}

export function KeyText({ value, quoted = false }: Props) {
  return (
    <bdi dir="ltr" class="key-text" aria-label={shownKey(value)}>
      {keyParts(value, quoted).map((part, i) =>
        part.escaped ? (
          <span key={i} class="escape">
            {part.text}
          </span>
        ) : (
          part.text
        ),
      )}
    </bdi>
  );
}
