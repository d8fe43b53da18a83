import { type Client, connectivityState } from '@grpc/grpc-js';

/**
 * Resolves after `ms`, or sooner once one of the clients' connections
 * changes state (a server that was down is being reconnected to, or the
 * client was closed): the wait between attempts, so that a server that
 * comes back is used at once rather than at the end of a backoff.
 */
export function connectionChangeOrTimeout(clients: readonly Client[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const until = new Date(Date.now() + ms);
    for (const client of clients) {
      const channel = client.getChannel();
      const state = channel.getConnectivityState(false);
      // Closed: the next attempt finds out (watching would throw).
      if (state === connectivityState.SHUTDOWN) return resolve();
      channel.watchConnectivityState(state, until, () => resolve());
    }
  });
}
