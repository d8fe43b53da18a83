/**
 * An HTTP/2 request answered before its body was read (refused at the
 * request gate, addressed to another host, to an unknown RPC or path, or
 * over the size limit) first waits for the client to finish sending that
 * body, within a byte budget and DRAIN_MAX_MS, and drops it. Otherwise
 * the stream is reset (RST_STREAM NO_ERROR) once the answer is complete:
 * Node does so for a stream whose body nobody read, connect-node for one
 * whose client is still sending, as Go does and HTTP/2 allows; but curl
 * 7.88 (Debian 12's) takes that reset for a failure when its body is still
 * to be sent, and reports error 92 instead of the status it was sent. A
 * body larger or slower than the budget, or one past MAX_DRAINING, is
 * still cut short that way: the stream is closed once the answer is out,
 * and then its client must show it is still there (`checkClient`): one that
 * left with its body half sent can leave its connection open for good over
 * TLS (http-connections.ts). HTTP/1.1 needs none of this: Node and
 * connect-node drain an unread body there themselves.
 */
import type http from 'node:http';
import http2 from 'node:http2';

/** What a refused request's body may bring in before its answer: a small JSON body, many times over. */
export const DRAIN_REFUSED_BYTES = 1024 * 1024;
/** What a body over the size limit may bring in (its caller got past the request gate): a few times the limit (16 MiB by default). */
export const DRAIN_TOO_LARGE_BYTES = 64 * 1024 * 1024;
/** How long a client may take to finish sending a body nobody reads before it is answered anyway. */
const DRAIN_MAX_MS = 1_000;
/** Drains at once in this process; past it a request is answered at once, as without draining. */
const MAX_DRAINING = 1_000;

let draining = 0;

/** Checks that the client of an HTTP/2 session is still there, closing its connection if not (HttpConnectionLimits.checkClient). */
export type CheckClient = (session: http2.Http2Session) => void;

export async function drainUnreadBody(
  request: http.IncomingMessage | http2.Http2ServerRequest | http2.ServerHttp2Stream,
  maxBytes: number,
  checkClient: CheckClient,
): Promise<void> {
  // The HTTP/2 stream: the request's (HTTP port), or the request is the stream itself (the gRPC port's unary calls).
  const stream = 'stream' in request ? request.stream : 'respond' in request ? request : undefined;
  if (stream === undefined || request.readableEnded || request.destroyed || stream.endAfterHeaders) return;
  const whole =
    draining < MAX_DRAINING &&
    (await new Promise<boolean>((resolve) => {
      draining++;
      let seen = 0;
      const done = (ended: boolean): void => {
        draining--;
        clearTimeout(timer);
        request.off('data', count).off('end', atEnd).off('close', cut).off('error', cut);
        request.pause();
        resolve(ended);
      };
      const atEnd = (): void => done(true);
      const cut = (): void => done(false);
      const count = (chunk: Buffer): void => {
        seen += chunk.length;
        if (seen > maxBytes) done(false);
      };
      // A body that has not ended by now: its client may have gone with it half sent.
      const timer = setTimeout(() => {
        cut();
        if (stream.session !== undefined) checkClient(stream.session);
      }, DRAIN_MAX_MS);
      request.on('data', count).once('end', atEnd).once('close', cut).once('error', cut);
      // A body partly read (and paused) by connect-node, too.
      request.resume();
    }));
  if (!whole) closeUnreadStream(stream, checkClient);
}

/**
 * For an HTTP/2 stream whose request body was read in part (then paused) or
 * not at all, to be answered now: Node no longer closes such a stream by
 * itself once its answer is out. It is closed as Node would, on the turn
 * after the answer's end, so that its END_STREAM goes out first; then its
 * client must show it is still there (`checkClient`).
 */
export function closeUnreadStream(stream: http2.ServerHttp2Stream, checkClient: CheckClient): void {
  const close = (): void => {
    if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    // A client that has its answer may leave now, before the rest of its body is sent.
    if (stream.session !== undefined) checkClient(stream.session);
  };
  stream.once('finish', () => setImmediate(close));
}
