/**
 * Closes the connections the supervisor dealt to a worker that died before
 * it took them. Node's cluster primary hands each new connection to a
 * worker over the IPC channel and keeps its own copy open until the worker
 * answers that it took it; a worker that dies first (SIGKILL, out of
 * memory, while stopped or too busy to read its channel) never answers, so
 * that copy stayed open for good: the client's connection was established
 * and nobody ever read it, its calls waiting out their deadlines for as
 * long as the client kept it (nodejs/node-v0.x-archive#7006).
 * Closed, the client sees the connection end and connects again, to a
 * worker that serves.
 *
 * This follows the cluster's own messages (undocumented: `act: 'newconn'`
 * with a `seq`, answered by a message whose `ack` is that `seq`); should a
 * Node release change them, nothing matches and nothing is closed, as
 * before.
 */
import type { ChildProcess } from 'node:child_process';
import type { Worker } from 'node:cluster';

/** The primary's handle of a connection it dealt (a TCP handle, not a net.Socket). */
interface DealtConnection {
  close(): void;
}

function isDealtConnection(handle: unknown): handle is DealtConnection {
  return typeof handle === 'object' && handle !== null && typeof (handle as { close?: unknown }).close === 'function';
}

/** The seq of a cluster message dealing a connection to the worker, if `message` is one. */
function connectionDealt(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { cmd, act, seq } = message as { cmd?: unknown; act?: unknown; seq?: unknown };
  return cmd === 'NODE_CLUSTER' && act === 'newconn' && typeof seq === 'number' ? seq : undefined;
}

/** The seq a worker's cluster message answers, if it answers one. */
function answered(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { cmd, ack } = message as { cmd?: unknown; ack?: unknown };
  return cmd === 'NODE_CLUSTER' && typeof ack === 'number' ? ack : undefined;
}

/** From now on, the connections dealt to `worker` that it has not answered for when it has exited and its channel has closed are closed. */
export function closeConnectionsUnclaimedBy(worker: Worker): void {
  const child: ChildProcess = worker.process;
  const unclaimed = new Map<number, DealtConnection>();
  const send = child.send.bind(child) as (...args: unknown[]) => boolean;
  child.send = (...args: unknown[]): boolean => {
    const seq = connectionDealt(args[0]);
    if (seq !== undefined && isDealtConnection(args[1])) unclaimed.set(seq, args[1]);
    return send(...args);
  };
  child.on('internalMessage', (message: unknown) => {
    const seq = answered(message);
    if (seq !== undefined) unclaimed.delete(seq);
  });
  // Once it has exited and its channel has closed ('close'): no answer can come after that ('disconnect' is not
  // said at all while the channel waits for the worker to take a connection).
  child.once('close', () => {
    for (const connection of unclaimed.values()) connection.close();
    unclaimed.clear();
  });
}
