/**
 * An HTTP/2 request answered before its body was read (refused at the
 * request gate, addressed to another host, to an unknown RPC or path, or
 * over the size limit) first waits for the client to finish sending that
 * body, up to DRAIN_MAX_BYTES and DRAIN_MAX_MS, and drops it. Otherwise
 * the stream is reset (RST_STREAM NO_ERROR) once the answer is complete:
 * Node does so for a stream whose body nobody read, connect-node for one
 * whose client is still sending, as Go does and HTTP/2 allows; but curl
 * 7.88 (Debian 12's) takes that reset for a failure when its body is still
 * to be sent, and reports error 92 instead of the status it was sent. A
 * body larger or slower than the bounds is still cut short that way.
 * HTTP/1.1 needs none of this: Node and connect-node drain an unread body
 * there themselves.
 */
import type http from 'node:http';
import type http2 from 'node:http2';

/** How much of a body nobody read is taken in (and dropped) before answering: enough for a body a few times the size limit (16 MiB by default), which is refused before it is read. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** How long a client may take to finish sending a body nobody reads before it is answered anyway. */
const DRAIN_MAX_MS = 1_000;

export async function drainUnreadBody(request: http.IncomingMessage | http2.Http2ServerRequest): Promise<void> {
  if (!('stream' in request) || request.readableEnded || request.destroyed || request.stream.endAfterHeaders) return;
  await new Promise<void>((resolve) => {
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      request.off('data', count).off('end', done).off('close', done).off('error', done);
      request.pause();
      resolve();
    };
    const count = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > DRAIN_MAX_BYTES) done();
    };
    const timer = setTimeout(done, DRAIN_MAX_MS);
    request.on('data', count).once('end', done).once('close', done).once('error', done);
    // A body partly read (and paused) by connect-node, too.
    request.resume();
  });
}
