/** Asks for a token when the server says the console's calls are not authenticated. */
import { useState } from 'preact/hooks';

interface Props {
  /** The token that was refused, if any. */
  refused: boolean;
  onToken: (token: string) => void;
}

export function Login({ refused, onToken }: Props) {
  const [token, setToken] = useState('');
  return (
    <main class="login">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (token.trim() !== '') onToken(token.trim());
        }}
      >
        <h1>kv console</h1>
        <p>This server requires a token (kv-server token create prints one).</p>
        <label for="token">Token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          autofocus
        />
        {refused && (
          <p class="error" role="alert">
            The server did not accept that token.
          </p>
        )}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
