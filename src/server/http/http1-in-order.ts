/**
 * Pipelined HTTP/1.1 requests, run one at a time in the order they came.
 * Node hands on each request of a connection as soon as its headers are
 * read and only queues the answers: a Get pipelined behind a Set was run
 * before the Set was applied, and answered after it with the old value.
 * RFC 9112 (9.3.2) lets a server work on pipelined requests at once only if
 * all their methods are safe, and every call is a POST.
 *
 * A request runs when Node gives its response the connection, which Node
 * does once every answer before it on that connection has been written
 * (its own refusals too). So a request behind an answer that ends the
 * connection (`Connection: close`, as at shutdown) is never run, nor are those
 * waiting when the connection closes (the client is gone: nothing could be
 * answered); they are dropped and released. Behind a stream (a Watch),
 * requests wait until it ends.
 *
 * A request waiting its turn writes nothing, so Node's own back-pressure
 * (it stops reading a connection while answers queue up) would never stop
 * the reading: once MAX_WAITING wait on a connection, this stops it, and
 * reads again once one of them has begun. Node parses all of a read at
 * once (up to 64 KiB), so the requests in that read are all handed on: at
 * most MAX_WAITING and one read's worth wait.
 */
import type http from 'node:http';
import type net from 'node:net';

/** Requests that may wait their turn on one connection before it is no longer read. */
export const MAX_WAITING = 8;

/** A connection with requests waiting their turn. */
interface Waiting {
  /** Each waiting response, with what runs its request when it gets the connection. */
  readonly turns: Map<http.ServerResponse, () => void>;
  /** Whether reading the connection is stopped here (Node may stop it too, for its own reasons). */
  held: boolean;
}

export class Http1InOrder {
  private readonly waiting = new Map<net.Socket, Waiting>();

  constructor(private readonly maxWaiting = MAX_WAITING) {}

  /** Runs `handle` now if every request before this one on its connection is answered, else once it is. */
  run(request: http.IncomingMessage, response: http.ServerResponse, handle: () => void): void {
    // A response has its connection while it is the next to be written: the one request not waiting.
    if (response.socket !== null) return handle();
    const socket = request.socket;
    let line = this.waiting.get(socket);
    if (line === undefined) line = this.watch(socket);
    const waiting = line;
    const turn = (): void => {
      waiting.turns.delete(response);
      if (waiting.held && waiting.turns.size < this.maxWaiting) this.release(socket, waiting);
      handle();
    };
    waiting.turns.set(response, turn);
    response.once('socket', turn);
    if (!waiting.held && waiting.turns.size >= this.maxWaiting) {
      waiting.held = true;
      socket.pause();
    }
  }

  /** How many requests wait their turn on `socket` (for tests). */
  waitingOn(socket: net.Socket): number {
    return this.waiting.get(socket)?.turns.size ?? 0;
  }

  private watch(socket: net.Socket): Waiting {
    const waiting: Waiting = { turns: new Map(), held: false };
    this.waiting.set(socket, waiting);
    // Node resumes a socket it paused itself once its answers are written, and reading a request's body resumes
    // it: stopped here, it is stopped again (Node's own onSocketResume does the same for its pause).
    socket.on('resume', () => {
      if (waiting.held) socket.pause();
    });
    socket.once('close', () => {
      // Never run: no answer could reach the client.
      for (const [response, turn] of waiting.turns) response.off('socket', turn);
      waiting.turns.clear();
      this.waiting.delete(socket);
    });
    return waiting;
  }

  private release(socket: net.Socket, waiting: Waiting): void {
    waiting.held = false;
    // Node's onSocketResume keeps the socket paused if Node has paused it too, until its own answers drain.
    if (!socket.destroyed) socket.resume();
  }
}
