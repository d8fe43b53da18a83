/**
 * kv.v1's unary calls served straight off the HTTP/2 stream, in front of
 * grpc-js's own handling. grpc-js makes several objects, listeners and
 * promise turns per call (an intercepting call, a stream decoder, a read
 * queue, metadata copies); a unary call needs one request frame in and one
 * response frame and trailers out. On this stack that difference was most
 * of what kv paid above a bare Node HTTP/2 server (docs/benchmarks-set-path.md).
 *
 * Only plain calls take this path: a kv.v1 unary method, content-type
 * application/grpc (or +proto), no compressed request. Everything else
 * (streams, health, reflection, compressed requests, unknown methods, other
 * content types) goes on to grpc-js as before, on the same HTTP/2 server. The
 * call itself (credentials, decoding, handler, metrics, the status of an
 * error) is the same UnaryCall grpc-js's handler runs (grpc-call.ts); only
 * the framing is done here, as grpc-js does it: the same response headers,
 * status trailers, deadline (grpc-timeout), message size limits and
 * statuses for a malformed call.
 *
 * Two grpc-js internals are used, both checked when the server starts (it
 * refuses to start if they are missing, rather than silently serving
 * otherwise): the HTTP/2 server its connection injector made (to put this
 * router in front of its 'stream' listener), and onStreamOpened, which counts
 * a connection's open calls for --max-connection-idle-ms.
 */
import http2 from 'node:http2';
import { TLSSocket } from 'node:tls';
import { Metadata, type Server, type ServerCredentials, type StatusObject, status } from '@grpc/grpc-js';
import { MAX_TIMER_MS } from '../max-timer';
import type { Caller, StreamGate } from './grpc-call';
import { DRAIN_REFUSED_BYTES, drainUnreadBody } from './http/drain-body';
import type { UnaryRoute } from './key-value-service';

export interface UnaryLimits {
  /** The largest request message read (grpc.max_receive_message_length). */
  maxReceiveBytes: number;
  /** The largest response message sent (grpc.max_send_message_length). */
  maxSendBytes: number;
}

/** What this module reaches in grpc-js's Server beyond its public API. */
interface GrpcServerInternals {
  http2Servers?: Map<http2.Http2Server | http2.Http2SecureServer, unknown>;
  onStreamOpened?: (stream: http2.ServerHttp2Stream) => void;
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * Routes the plain unary calls of `routes` on the HTTP/2 server that
 * `server.createConnectionInjector(credentials)` made last (call it right
 * after); the other calls of a method in `routes` or `streamGates` go on to
 * grpc-js only once their caller is past its credentials step. Throws if
 * grpc-js is not as this module expects.
 */
export function serveUnaryOverHttp2(
  server: Server,
  credentials: ServerCredentials,
  routes: ReadonlyMap<string, UnaryRoute>,
  limits: UnaryLimits,
  streamGates: ReadonlyMap<string, StreamGate> = new Map(),
): void {
  const internals = server as unknown as GrpcServerInternals;
  const http2Servers = internals.http2Servers;
  const onStreamOpened = internals.onStreamOpened;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0 || typeof onStreamOpened !== 'function') {
    throw new Error('grpc-js is not the version kv was built with: its HTTP/2 server or onStreamOpened is missing');
  }
  // Interceptors of the credentials would be skipped by this path; kv's credentials have none.
  if (credentials._getInterceptors().length > 0) throw new Error('serveUnaryOverHttp2: credentials with interceptors are not supported');
  const http2Server = [...http2Servers.keys()].at(-1) as http2.Http2Server;
  const listeners = http2Server.listeners('stream') as StreamListener[];
  if (listeners.length !== 1) throw new Error(`grpc-js is not the version kv was built with: ${listeners.length} stream listeners`);
  const grpcJs = listeners[0];
  http2Server.removeListener('stream', grpcJs);
  http2Server.on('stream', function route(this: http2.Http2Server, stream, headers, flags, rawHeaders) {
    keepRepeatedAuthorization(headers, rawHeaders);
    const path = headers[':path'] as string;
    const unary = routes.get(path);
    if (unary === undefined || !isPlainCall(headers)) {
      // grpc-js reads a call's requests (up to the message limit each) before its handler checks the credentials:
      // a caller without them is refused here, from its headers, as the plain unary calls are.
      const caller = (): Caller => callerOf(stream, headers);
      const admission = unary !== undefined ? unary.call.admit(caller) : streamGates.get(path)?.(caller);
      if (admission === undefined || admission.admitted) return grpcJs.call(this, stream, headers, flags, rawHeaders);
      return refuseUnread(stream, admission.refuse);
    }
    // Counted as grpc-js counts its own calls, so a busy connection is never closed as idle.
    onStreamOpened.call(server, stream);
    serveUnary(stream, headers, unary, limits);
  } satisfies (this: http2.Http2Server, ...args: Parameters<StreamListener>) => void);
}

/**
 * Node keeps only the first of several `authorization` headers; the call's
 * metadata must have them all, so that authentication refuses a call with
 * two ("send exactly one") instead of quietly using the first.
 */
function keepRepeatedAuthorization(headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void {
  let values: string[] | undefined;
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() !== 'authorization') continue;
    count++;
    (values ??= []).push(rawHeaders[i + 1]);
  }
  // Metadata.fromHttp2Headers adds each value of an array.
  if (count > 1) (headers as Record<string, string | string[] | undefined>).authorization = values;
}

/** A call this path serves: protobuf over gRPC, the request not compressed. */
function isPlainCall(headers: http2.IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'];
  if (contentType !== 'application/grpc' && contentType !== 'application/grpc+proto') return false;
  const encoding = headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

// grpc-js's response headers and OK trailers, byte for byte (server-interceptors.ts).
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};
const OK_TRAILERS = { 'grpc-status': String(status.OK), 'grpc-message': 'OK' };
const WAIT_FOR_TRAILERS = { waitForTrailers: true };
const END_STREAM = { endStream: true };

/** grpc-timeout: up to 8 digits and a unit (gRPC over HTTP/2), found as grpc-js finds it (unanchored). */
const TIMEOUT_PATTERN = /(\d{1,8})\s*([HMSmun])/;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Sends the OK trailers once the response message is out; `this` is the stream (no closure per call). */
function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

function ignoreError(): void {
  // Every stream error is followed by 'close'; the call is then answered into the void.
}

/** A client that left half way through a refused body: grpc-js's keepalive pings find it gone (drain-body.ts checkClient). */
function noClientCheck(): void {
  // Nothing to do here.
}

function serveUnary(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, route: UnaryRoute, limits: UnaryLimits): void {
  stream.once('error', ignoreError);
  let answered = false;
  let deadline: NodeJS.Timeout | undefined;
  const answer = (error: Partial<StatusObject> | null, response?: unknown): void => {
    if (answered) return;
    answered = true;
    if (deadline !== undefined) clearTimeout(deadline);
    // Cancelled, reset or timed out by the client, or the connection is gone: nobody to answer.
    if (stream.destroyed || stream.closed) return;
    try {
      if (error === null) sendResponse(stream, route, limits, response);
      else sendStatus(stream, error);
    } catch {
      // Node refused to send (the stream ended under us): reset the call, rather than throw into the handler's promise.
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  };

  // Until its request is handed to the call, a status of this transport's own ends it, counted as the call's outcome.
  let endEarly = (reply: Partial<StatusObject>): void => answer(reply);
  const timeout = headers['grpc-timeout'];
  let deadlineAt: number | undefined;
  if (timeout !== undefined) {
    // A repeated header: the first, as grpc-js reads it.
    const value = Array.isArray(timeout) ? timeout[0] : timeout;
    const match = TIMEOUT_PATTERN.exec(value);
    if (match === null) return answer({ code: status.INTERNAL, details: `Invalid grpc-timeout value "${value}"` });
    const ms = Number(match[1]) * TIMEOUT_UNIT_MS[match[2]];
    deadlineAt = Date.now() + ms;
    if (ms <= MAX_TIMER_MS) {
      deadline = setTimeout(() => endEarly({ code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }), ms);
      // A stream that closes unanswered (the connection reset, a forced shutdown) must not leave the timer, and the request it holds, behind.
      stream.once('close', () => {
        answered = true;
        clearTimeout(deadline);
      });
    }
  }

  // Credentials before the request: a caller refused here has nothing of its body kept. As on the HTTP port, the
  // client may finish sending it (within a budget and a second), then is answered; a body past that is cut short.
  const admission = route.call.admit(() => callerOf(stream, headers));
  if (!admission.admitted) return refuseUnread(stream, admission.refuse, answer);
  endEarly = (reply) => {
    if (!answered) admission.end(answer, reply);
  };

  // The request: one gRPC frame (a flag byte, a 4-byte length, the message), then the end of the stream.
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let received = 0;
  const tooLarge = (size: number): void => {
    stream.off('data', onData);
    stream.resume();
    endEarly({ code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${size} vs ${limits.maxReceiveBytes})` });
  };
  const onData = (chunk: Buffer): void => {
    // Refused once more than the limit has arrived, not from the frame header alone as grpc-js does: a stream
    // answered while its client is still sending gets the whole connection closed by Node (ENHANCE_YOUR_CALM),
    // where this way the client reads a RESOURCE_EXHAUSTED status.
    received += chunk.length;
    if (received > limits.maxReceiveBytes + 5) return tooLarge(received - 5);
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  };
  stream.on('data', onData);
  stream.once('end', () => {
    // A client that went away with its request half sent (the stream reset, the connection lost) is not answered.
    if (answered || stream.aborted) return;
    const bytes = more === undefined ? first : Buffer.concat(more, received);
    const message = requestMessage(bytes, headers[':path'] as string, limits.maxReceiveBytes);
    if (!('bytes' in message)) return endEarly(message);
    let request: unknown;
    try {
      request = route.decode(message.bytes);
    } catch {
      return endEarly({ code: status.INTERNAL, details: 'Error deserializing request' });
    }
    // From here the call answers and counts itself (a deadline that passes meanwhile only answers).
    endEarly = answer;
    admission.run(request, answer, deadlineAt);
  });
}

/**
 * Answers a call refused from its headers, its body unread and not kept: as on
 * the HTTP port, the client may finish sending it (within a budget and a
 * second), then gets the status; a body past that is cut short once the
 * status is out (drain-body.ts).
 */
function refuseUnread(
  stream: http2.ServerHttp2Stream,
  refuse: (answer: (error: Partial<StatusObject>) => void) => void,
  answer: (error: Partial<StatusObject>) => void = (error) => {
    if (!stream.destroyed && !stream.closed) sendStatus(stream, error);
  },
): void {
  stream.once('error', ignoreError);
  void drainUnreadBody(stream, DRAIN_REFUSED_BYTES, noClientCheck).then(() => refuse(answer));
}

/** Sends the response message and OK trailers, or the status grpc-js sends for a response it cannot send. */
function sendResponse(stream: http2.ServerHttp2Stream, route: UnaryRoute, limits: UnaryLimits, response: unknown): void {
  let body: Buffer;
  try {
    body = route.encode(response);
  } catch {
    return sendStatus(stream, { code: status.INTERNAL, details: 'Error serializing response' });
  }
  if (body.length > limits.maxSendBytes) {
    return sendStatus(stream, {
      code: status.RESOURCE_EXHAUSTED,
      details: `Sent message larger than max (${body.length} vs. ${limits.maxSendBytes})`,
    });
  }
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
  stream.once('wantTrailers', sendOkTrailers);
  stream.end(frame);
}

/**
 * The one message of a unary request, or the status grpc-js answers in its
 * place: no complete message, a second complete one, or a declared size over
 * the limit. An incomplete frame after the message is ignored, as grpc-js's
 * decoder ignores it.
 */
function requestMessage(bytes: Buffer | undefined, path: string, maxBytes: number): { bytes: Buffer } | Partial<StatusObject> {
  const none = { code: status.UNIMPLEMENTED, details: `Received no request message for server streaming method ${path}` };
  if (bytes === undefined || bytes.length < 5) return none;
  const length = bytes.readUInt32BE(1);
  if (length > maxBytes) return { code: status.RESOURCE_EXHAUSTED, details: `Received message larger than max (${length} vs ${maxBytes})` };
  if (bytes.length < 5 + length) return none;
  const next = 5 + length;
  if (bytes.length >= next + 5 && bytes.length >= next + 5 + bytes.readUInt32BE(next + 1)) {
    return { code: status.UNIMPLEMENTED, details: `Received a second request message for server streaming method ${path}` };
  }
  // A set compressed flag with no grpc-encoding means identity, as in grpc-js.
  return { bytes: bytes.subarray(5, next) };
}

/** Ends the call with a status: trailers only if nothing was sent (always so here: a message is sent only with OK). */
function sendStatus(stream: http2.ServerHttp2Stream, error: Partial<StatusObject>): void {
  const trailers: http2.OutgoingHttpHeaders = {
    ...RESPONSE_HEADERS,
    'grpc-status': String(error.code ?? status.UNKNOWN),
    'grpc-message': encodeURI(error.details ?? ''),
  };
  // grpc-js's trailers-only response carries content-type but not the encoding headers.
  delete trailers['grpc-accept-encoding'];
  delete trailers['grpc-encoding'];
  if (error.metadata) Object.assign(trailers, error.metadata.toHttp2Headers());
  stream.respond(trailers, END_STREAM);
}

/** The caller as authenticate() sees it, as grpc-js's call would describe it (grpc-call.ts callerOf). */
function callerOf(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Caller {
  const metadata = Metadata.fromHttp2Headers(headers);
  for (const name of ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type'])
    metadata.remove(name);
  const socket = stream.session?.socket;
  const peer =
    socket?.remoteAddress === undefined
      ? 'unknown'
      : socket.remotePort
        ? `${socket.remoteAddress}:${socket.remotePort}`
        : socket.remoteAddress;
  const caller: Caller = { metadata, peer, method: headers[':path'] as string };
  // As grpc-js's getAuthContext: a certificate only from a TLS connection whose client certificate verified.
  if (socket instanceof TLSSocket && socket.authorized) {
    const certificate = socket.getPeerCertificate();
    if (certificate.raw) caller.certificate = certificate;
  }
  return caller;
}
