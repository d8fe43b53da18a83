/**
 * connect-node's connectNodeAdapter (a router's RPCs as a Node.js request
 * handler, everything else to a fallback), with the requests connect
 * refuses explained. connect answers a content type it does not take
 * (415), another HTTP method than POST (405) and KeepAlive over HTTP/1.1
 * (505) with a status and an empty body, and an RPC path it does not know
 * goes to the fallback (the console); here each gets one line of text
 * saying what is expected, and a gRPC call, on any path, a gRPC status
 * (grpc-refusal.ts). A stream's body sent without its frames (the
 * JSON of a unary call) is refused saying so, rather than read as a message
 * hundreds of megabytes long. A content type sent twice with different
 * values is refused (400), not the first taken. A deadline longer than a
 * timer holds is capped, and a deadline or protocol version sent twice
 * alike taken once (connect-headers.ts). Each call also learns when its
 * client goes away (CLIENT_GONE); a client that leaves mid-answer is logged
 * at debug level, not as a failure of the server.
 */
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type ConnectRouter } from '@connectrpc/connect';
import { createAsyncIterable, type UniversalHandler, type UniversalServerResponse } from '@connectrpc/connect/protocol';
import {
  compressionBrotli,
  compressionGzip,
  type ConnectNodeAdapterOptions,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from '@connectrpc/connect-node';
import type { Logger } from '../../logger';
import { InvalidArgumentError } from '../service-errors';
import { capDeadline, collapseRepeats, SENT_UNLIKE } from './connect-headers';
import { type CheckClient, closeUnreadStream, DRAIN_REFUSED_BYTES, DRAIN_TOO_LARGE_BYTES, drainUnreadBody } from './drain-body';
import { contentTypeRefusal, contentTypeRepeated, contentTypes } from './content-type-refusal';
import { isGrpcRequest, refuseGrpc } from './grpc-refusal';
import { toConnectError } from './to-connect-error';

type NodeHandler = NonNullable<ConnectNodeAdapterOptions['fallback']>;

export interface NodeAdapterOptions extends Omit<ConnectNodeAdapterOptions, 'fallback' | 'requestPathPrefix'> {
  routes: (router: ConnectRouter) => void;
  /** Every request that is not for an RPC path. */
  fallback: NodeHandler;
  /** Where a handler that fails outside a call (a broken connection mid-answer, say) is reported. */
  logger: Logger;
  /** For a request answered with its body left unread (drain-body.ts). */
  checkClient: CheckClient;
  /** The port of the server's gRPC listener, which a gRPC call sent here is told of (grpc-refusal.ts). */
  grpcPort: () => number | undefined;
}

/**
 * Aborted when the connection or HTTP/2 stream of a call closes before its
 * answer is complete: the client went away. A stream cannot wait for
 * connect-node to say so: its write waits for a 'drain' or 'error' that a
 * destroyed socket never emits, and the call's own signal stays as its
 * deadline left it.
 */
export const CLIENT_GONE = createContextKey<AbortSignal>(new AbortController().signal, { description: 'kv client gone' });

/** "/package.Service/Method": the path of an RPC, known or not. */
const RPC_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+\/[^/]*$/;

export function nodeAdapter({ routes, fallback, logger, checkClient, grpcPort, ...options }: NodeAdapterOptions): NodeHandler {
  // connect-node's defaults, as connectNodeAdapter sets them.
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  routes(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const known = [...handlers.values()];
  const streams = known.filter((handler) => handler.method.methodKind !== 'unary').map((handler) => handler.method.name);
  const failed = (response: Parameters<NodeHandler>[1], reason: unknown, where: Record<string, string>, what: string): void => {
    const left = clientLeft(reason);
    if (left !== undefined) {
      // Not a server fault, and nothing to answer: the connection or stream is let go of now, not at its next timeout.
      logger.debug({ ...where, reason: left }, 'HTTP port: the client went away before its answer was complete');
      if (!response.writableEnded && !response.destroyed) response.destroy();
      return;
    }
    logger.warn({ err: reason, ...where }, what);
    // Never left unanswered: a request in flight holds its connection past every idle timeout.
    if (!response.headersSent) {
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('internal error (logged by the server)\n');
    } else if (!response.writableEnded) {
      response.destroy();
    }
  };
  return (request, response) => {
    const path = request.url?.split('?', 2)[0] ?? '';
    if (isGrpcRequest(request.headers['content-type'])) {
      // Answered at once, its body unread (gRPC clients take a status before their request is sent, as gRPC servers
      // answer an unknown method): a bidirectional stream's client (grpcurl's reflection) would not end it for a drain.
      if ('stream' in request && !request.readableEnded) closeUnreadStream(request.stream, checkClient);
      return refuseGrpc(response, path, grpcPort(), logger);
    }
    const handler = handlers.get(path);
    if (handler === undefined) {
      const answer =
        request.method === 'POST' && RPC_PATH.test(path)
          ? () => universalResponseToNodeResponse(text(404, unknownRpc(path, known)), response)
          : () => fallback(request, response);
      return void drainUnreadBody(request, DRAIN_REFUSED_BYTES, checkClient)
        .then(answer)
        .catch((reason: unknown) => failed(response, reason, { path }, 'HTTP port: answering a request failed'));
    }
    if (!hasUrl(request)) {
      // connect-node would throw building the call's URL, outside any handler (the process ended): a 400 instead.
      // (Only calls: the console needs no Host, and a load balancer's HTTP/1.0 health check sends none.)
      return void drainUnreadBody(request, DRAIN_REFUSED_BYTES, checkClient)
        .then(() => universalResponseToNodeResponse(text(400, BAD_URL), response))
        .catch((reason: unknown) => failed(response, reason, { path }, 'HTTP port: answering a request failed'));
    }
    const repeated = contentTypeRepeated(request.rawHeaders);
    if (repeated !== undefined) {
      return void drainUnreadBody(request, DRAIN_REFUSED_BYTES, checkClient)
        .then(() => universalResponseToNodeResponse(text(400, repeated), response))
        .catch((reason: unknown) => failed(response, reason, { path }, 'HTTP port: answering a request failed'));
    }
    const values = options.contextValues?.(request) ?? createContextValues();
    values.set(CLIENT_GONE, goneSignal(response));
    // A throw here (none is known once the URL is good) must not reach the event loop: it would end the process.
    let universal: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      universal = universalRequestFromNodeRequest(request, response, undefined, values);
    } catch (reason) {
      return failed(response, reason, { rpc: handler.requestPath }, 'HTTP port: answering a call failed');
    }
    values.set(SENT_UNLIKE, collapseRepeats(universal.header, request.rawHeaders));
    capDeadline(universal.header);
    const contentType = request.headers['content-type'] ?? '';
    if (ENVELOPED.test(contentType)) {
      const oneMessage = handler.method.methodKind === 'unary' || handler.method.methodKind === 'server_streaming';
      universal.body = framed(universal.body as AsyncIterable<Uint8Array>, contentType, oneMessage, logger);
    }
    handler(universal)
      .then(async (answer) => {
        if (handler.method.methodKind === 'unary' || handler.method.methodKind === 'server_streaming') {
          // Only a caller past the request gate is told its body is too large (429).
          await drainUnreadBody(request, answer.status === 429 ? DRAIN_TOO_LARGE_BYTES : DRAIN_REFUSED_BYTES, checkClient);
        }
        return universalResponseToNodeResponse(explained(answer, handler, request, streams), response);
      })
      .catch((reason: unknown) => failed(response, reason, { rpc: handler.requestPath }, 'HTTP port: answering a call failed'));
  };
}

const BAD_URL =
  'bad request: it needs a Host header (over HTTP/2, :authority) naming a host, and a path, that make a URL (http://HOST/PATH)';

/**
 * The host a request is addressed to, as connect-node reads it: HTTP/2's
 * :authority (Node falls back to its Host header), HTTP/1's Host header.
 */
export function requestAuthority(request: Parameters<NodeHandler>[0]): string | undefined {
  return 'authority' in request ? request.authority : request.headers.host;
}

/** The last authority and path that made a URL: a client sends the same ones call after call, and `new URL` is not free. */
let madeUrl = '';

/** Whether connect-node can build the request's URL (it throws where there is no Host, or a host or path no URL can hold). */
function hasUrl(request: Parameters<NodeHandler>[0]): boolean {
  const authority = requestAuthority(request);
  if (authority === undefined || authority === '') return false;
  const encrypted = 'encrypted' in request.socket && request.socket.encrypted === true;
  const base = `${encrypted ? 'https' : 'http'}://${authority}`;
  const key = `${base} ${request.url ?? ''}`;
  if (key === madeUrl) return true;
  try {
    new URL(request.url ?? '', base);
  } catch {
    return false;
  }
  madeUrl = key;
  return true;
}

/** The content types whose body is a sequence of framed messages: Connect's streams, and every gRPC-Web call. */
const ENVELOPED = /^\s*application\/(connect\+|grpc-web)/i;

/**
 * A framed body, checked to start with a frame: a 5-byte header, whose
 * flags byte is 0 or 1 (compressed) in a request, then the message's length
 * (4 bytes, big-endian). Unframed JSON starts with "{", which connect-es
 * would take for flags, and the next 4 bytes ("key" ...) for a length of some
 * 577 MB, too large to read. With `oneMessage` (a unary or server-streaming
 * call), nothing may follow that frame: connect-es would read what does as
 * the header of a second one, and refuse its made-up length as too large.
 */
async function* framed(
  body: AsyncIterable<Uint8Array>,
  contentType: string,
  oneMessage: boolean,
  logger: Logger,
): AsyncGenerator<Uint8Array> {
  let first = true;
  const header = Buffer.alloc(5);
  let total = 0;
  for await (const chunk of body) {
    if (first && chunk.length > 0) {
      first = false;
      const flags = chunk[0];
      if (flags > 1) {
        const byte =
          flags >= 0x20 && flags < 0x7f ? JSON.stringify(String.fromCharCode(flags)) : `0x${flags.toString(16).padStart(2, '0')}`;
        const problem =
          `${contentType.split(';')[0].trim()} bodies are framed: each message needs a 5-byte header before it (a flags byte, 0, ` +
          `then the message's length as 4 bytes big-endian; see README, "Over HTTP"), and this one starts with ${byte}`;
        throw toConnectError(new InvalidArgumentError(`request could not be decoded: ${problem}`), logger);
      }
    }
    if (oneMessage) {
      for (let i = 0; i < chunk.length && total + i < 5; i++) header[total + i] = chunk[i];
      total += chunk.length;
      const frameBytes = 5 + header.readUInt32BE(1);
      if (total >= 5 && total > frameBytes) {
        const problem = `this call takes one message, of ${frameBytes - 5} bytes by its frame's header, and ${total - frameBytes} more bytes follow it`;
        throw toConnectError(new InvalidArgumentError(`request could not be decoded: ${problem}`), logger);
      }
    }
    yield chunk;
  }
}

/**
 * Node's codes for a connection or HTTP/2 stream that its client closed or
 * reset while it was being written to or read from. connect-node takes
 * ECONNRESET and a destroyed stream for Aborted but EPIPE for Internal:
 * EPIPE is what a write gets once a client that closed its connection
 * (a browser tab shut mid-Watch, curl stopped) has answered the bytes that
 * still came with a reset.
 */
const CLIENT_LEFT_CODES = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNABORTED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_HTTP2_INVALID_STREAM',
  'ERR_HTTP2_STREAM_CANCEL',
]);

/** Why `reason` means the client went away (a Node error code, or connect's Aborted), or undefined if it does not. */
function clientLeft(reason: unknown): string | undefined {
  // At most a few causes deep: connect-node wraps Node's error once.
  let cause = reason;
  for (let depth = 0; depth < 8 && cause instanceof Error; depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && CLIENT_LEFT_CODES.has(code)) return code;
    cause = cause.cause;
  }
  // connect-node's own adapter ignores these too: the client went away.
  return ConnectError.from(reason).code === Code.Aborted ? 'aborted' : undefined;
}

/** Aborted if `response` closes before it was ended (connect-node ends it once the call's answer is all given). */
function goneSignal(response: Parameters<NodeHandler>[1]): AbortSignal {
  const gone = new AbortController();
  response.once('close', () => {
    // Not writableFinished: an HTTP/2 response's is its stream's, which a reset stream can report finished.
    if (!response.writableEnded) gone.abort();
  });
  return gone.signal;
}

/** connect's empty refusals, with a line of text; anything else as it is. */
function explained(
  answer: UniversalServerResponse,
  handler: UniversalHandler,
  request: Parameters<NodeHandler>[0],
  streams: string[],
): UniversalServerResponse {
  if (answer.body !== undefined) return answer;
  switch (answer.status) {
    case 415: {
      const accepted = contentTypes(handler);
      const line = contentTypeRefusal(request.headers['content-type'], handler, streams);
      return text(415, line, answer.header, { 'accept-post': [...accepted.connect, ...accepted.grpcWeb].join(', ') });
    }
    case 405:
      return text(405, `${request.method} is not allowed: RPCs are POST ${handler.requestPath}`, answer.header, { allow: 'POST' });
    case 505:
      return text(
        505,
        `${handler.method.name} is a bidirectional stream: it needs HTTP/2 (Connect clients: httpVersion "2")`,
        answer.header,
      );
    default:
      return answer;
  }
}

function unknownRpc(path: string, known: UniversalHandler[]): string {
  const services = [...new Set(known.map((handler) => handler.service.typeName))];
  const methods = known.map((handler) => handler.method.name).join(', ');
  return `unknown RPC ${path}: this port serves ${services.join(', ')}, whose methods are ${methods} (POST /${services[0]}/<Method>)`;
}

function text(status: number, line: string, header?: Headers, extra: Record<string, string> = {}): UniversalServerResponse {
  const headers = new Headers(header);
  headers.set('content-type', 'text/plain; charset=utf-8');
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  return { status, header: headers, body: createAsyncIterable([new TextEncoder().encode(`${line}\n`)]) };
}
