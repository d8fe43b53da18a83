/**
 * Asks for a token when the server says the console's calls are not
 * authenticated. The token is tried (one ListKeys) before it is taken: a
 * refused one, or a server refusing to check any for a while after too many
 * failures, keeps the person here with the reason; one that could not be a
 * token (a control character pasted with it) is not sent.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Code, ConnectError } from '@connectrpc/connect';
import { describeFailure, type KvClient, reasonOf, retryAfterSeconds, tokenProblem } from './kv';

interface Props {
  /** The token that was refused, if any. */
  refused: boolean;
  /** A client that sends this token. */
  client: (token: string) => KvClient;
  onToken: (token: string) => void;
}

export function Login({ refused, client, onToken }: Props) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | undefined>(refused ? 'The server did not accept that token.' : undefined);
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  // autofocus works only on the page's first load.
  useEffect(() => field.current?.focus(), []);

  const signIn = async (entered: string): Promise<void> => {
    // Not sent: the browser would refuse to put it in a header, with its own wording.
    const problem = tokenProblem(entered);
    if (problem !== undefined) {
      setProblem(problem);
      field.current?.focus();
      return;
    }
    setBusy(true);
    try {
      await client(entered).listKeys({ prefix: '', pageSize: 1 });
      onToken(entered);
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) setProblem('The server did not accept that token.');
      else if (reasonOf(error) === 'AUTH_RATE_LIMITED') {
        const wait = retryAfterSeconds(error);
        setProblem(`Too many attempts from this address: the server checks no token for now; retry in ${wait ?? 'a few'} s.`);
      } else if (error instanceof ConnectError && error.code === Code.PermissionDenied) {
        // Known, just not allowed to list everything: signed in.
        onToken(entered);
        return;
      } else setProblem(`Could not sign in: ${describeFailure(error)}`);
      setBusy(false);
      field.current?.focus();
    }
  };

  return (
    <main class="login">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (busy) return;
          if (token.trim() === '') {
            // Said, rather than a Sign in that does nothing.
            setProblem('Enter a token.');
            field.current?.focus();
            return;
          }
          void signIn(token.trim());
        }}
      >
        <h1>kv console</h1>
        <p>This server requires a token (kv-server token create prints one).</p>
        <label for="token">Token</label>
        <input
          id="token"
          ref={field}
          type="password"
          autocomplete="off"
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
        />
        {problem !== undefined && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
