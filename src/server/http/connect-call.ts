/**
 * Adapts the same handlers to Connect (connect-node), as grpc-call.ts does
 * for grpc-js. connect-node speaks the protocols (Connect with JSON or
 * protobuf, gRPC-Web) and parses messages with protobuf-es; each message is
 * then re-encoded and read by the gRPC path's own strict decoders, and each
 * response written by its encoders, so validation, limits and value
 * handling ("__proto__" included) are the gRPC path's, in one place. Errors
 * are mapped by toConnectError (to-connect-error.ts).
 */
import { type DescMessage, type DescMethod, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import { reflect } from '@bufbuild/protobuf/reflect';
import { Code, ConnectError, type HandlerContext, createContextKey } from '@connectrpc/connect';
import { type MethodDefinition, status } from '@grpc/grpc-js';
import { type Access, openAccess } from '../access';
import type { CallContext } from '../call-context';
import { type MethodObserver, NO_METHOD_OBSERVER } from '../call-observer';
import type { Caller, DuplexHandler, GrpcDeps, Handler, StreamHandler, StreamLifetime, StreamSink } from '../grpc-call';
import { InvalidArgumentError } from '../service-errors';
import { rewordConnectFailure, toConnectError } from './to-connect-error';
import { failsTheStore } from '../../store/errors';
import { checkConnectHeaders, SENT_UNLIKE } from './connect-headers';
import { CLIENT_GONE } from './node-adapter';
import { findUnpairedSurrogate } from './unpaired-surrogates';
import { ALWAYS_FITS_JSON_BYTES, MAX_JSON_CHARS, tooLargeForJson } from './json-size';

/** The caller as the HTTP request showed it (http-caller.ts puts it here), without the method. */
export const CALLER = createContextKey<Omit<Caller, 'method'> | undefined>(undefined, { description: 'kv caller' });
/** What the caller may do, decided by the request gate before the body is read. */
const ACCESS = createContextKey<Access | undefined>(undefined, { description: 'kv access' });

/** Set once a call reaches its handler here, which counts it from then on. */
const HANDLED = createContextKey<boolean>(false, { description: 'kv call handled' });

/** connect's reasons for a call that ended before its handler that the gRPC port does not count either: the client went away or ran out of time. */
const UNCOUNTED = new Set([Code.Canceled, Code.Aborted, Code.DeadlineExceeded]);

/**
 * Connect's request gate: credentials first, before the body is read, so a
 * caller without them learns nothing (not even that its request was
 * malformed), then the Connect protocol's headers (connect-headers.ts). A
 * call refused here, or by connect-es before its handler
 * (a body that does not parse, or is too large), is counted by the
 * method's observer, as the gRPC port counts those.
 */
export function authenticateRequest(deps: GrpcDeps, observerOf: (method: string) => MethodObserver): (context: HandlerContext) => void {
  return (context) => {
    const refused = (failure: ConnectError): void => {
      const observer = observerOf(context.method.name);
      const code: status = Number(failure.code); // Connect and gRPC number their codes alike
      if (context.method.methodKind === 'unary') return observer.answered(observer.started(), code);
      observer.streamOpened();
      observer.streamClosed(code);
    };
    const caller = context.values.get(CALLER);
    if (caller === undefined) throw new Error('the HTTP adapter did not record the caller');
    try {
      const { authenticate } = deps;
      const access =
        authenticate === undefined
          ? openAccess
          : authenticate({ ...caller, method: `/${context.service.typeName}/${context.method.name}` });
      context.values.set(ACCESS, access);
      // Connect's own headers after the credentials (gRPC-Web's are connect-es's to check).
      if (context.protocolName === 'connect') checkConnectHeaders(context.requestHeader, context.values.get(SENT_UNLIKE));
    } catch (error) {
      const failure = toConnectError(error, deps.logger);
      refused(failure);
      throw failure;
    }
    // connect-es aborts a call's signal with the error it is about to answer, before it renders it.
    const aborted = (): void => {
      const reason: unknown = context.signal.reason;
      // connect-es's own refusals (a body that does not decode, or is too large) in kv's words (to-connect-error.ts).
      rewordConnectFailure(reason, deps.logger);
      if (!context.values.get(HANDLED) && reason instanceof ConnectError && !UNCOUNTED.has(reason.code)) refused(reason);
    };
    context.signal.addEventListener('abort', aborted, { once: true });
  };
}

/** A request's codecs: the gRPC service definition's (strict decoder, hand-written encoders). */
type WireCodecs<Req, Res> = Pick<MethodDefinition<Req, Res>, 'requestDeserialize' | 'responseSerialize'>;

type Method<I extends DescMessage, O extends DescMessage> = DescMethod & { input: I; output: O };

export function connectUnary<I extends DescMessage, O extends DescMessage, Req, Res>(
  method: Method<I, O>,
  codecs: WireCodecs<Req, Res>,
  handler: Handler<Req, Res>,
  deps: GrpcDeps,
): (request: MessageShape<I>, context: HandlerContext) => Promise<MessageShape<O>> {
  const observer = deps.observer ?? NO_METHOD_OBSERVER;
  return (request, context) => {
    const call = callContext(context, deps);
    const startedAt = observer.started();
    const notRun = deadlinePassed(context);
    if (notRun !== undefined) {
      observer.answered(startedAt, status.DEADLINE_EXCEEDED);
      call.access.finished(status.DEADLINE_EXCEEDED);
      return Promise.reject(notRun);
    }
    // Counted and audited with how the call came out, also when its deadline answered the client first (as on the
    // gRPC port: a write that was applied after its deadline is recorded as applied).
    const settled = (async () => {
      try {
        const response = await handler(call, decode(method, codecs, request));
        const answer = toAnswer(method, codecs.responseSerialize(response), context);
        observer.answered(startedAt, status.OK);
        call.access.finished(status.OK);
        return answer;
      } catch (error) {
        const failure = fail(error, deps);
        const code: status = Number(failure.code); // Connect and gRPC number their codes alike
        observer.answered(startedAt, code);
        call.access.finished(code);
        throw failure;
      }
    })();
    return untilDeadline(settled, context.signal);
  };
}

/** A server-streaming handler for connect-node. */
export function connectServerStream<I extends DescMessage, O extends DescMessage, Req, M>(
  method: Method<I, O>,
  codecs: WireCodecs<Req, M>,
  handler: StreamHandler<Req, M>,
  deps: GrpcDeps,
  lifetime: StreamLifetime,
): (request: MessageShape<I>, context: HandlerContext) => AsyncGenerator<MessageShape<O>> {
  return (request, context) =>
    streamResponses(method, codecs, deps, lifetime, context, (call, sink) => handler(call, decode(method, codecs, request), sink));
}

/**
 * A bidirectional handler for connect-node (HTTP/2 only, as the Connect
 * protocol has it); each request is decoded as a unary one is, and one
 * that does not decode ends the call with INVALID_ARGUMENT.
 */
export function connectBidiStream<I extends DescMessage, O extends DescMessage, Req, M>(
  method: Method<I, O>,
  codecs: WireCodecs<Req, M>,
  handler: DuplexHandler<Req, M>,
  deps: GrpcDeps,
): (requests: AsyncIterable<MessageShape<I>>, context: HandlerContext) => AsyncGenerator<MessageShape<O>> {
  async function* decoded(requests: AsyncIterable<MessageShape<I>>): AsyncGenerator<Req> {
    for await (const request of requests) yield decode(method, codecs, request);
  }
  return (requests, context) =>
    streamResponses(method, codecs, deps, 'open-ended', context, (call, sink) => handler(call, decoded(requests), sink));
}

/**
 * The handler pushes into a sink, Connect pulls from a generator. A message
 * counts as sent once the generator has handed it on (connect-node then
 * waits for the socket), which is the backpressure the handler waits for.
 * Shutdown ends the stream with the error it is given (UNAVAILABLE): an
 * open-ended one as the drain starts, a finite one if the grace runs out;
 * the call's deadline ends it with DEADLINE_EXCEEDED. A client that goes away
 * (CLIENT_GONE) ends the call there and then, CANCELLED: connect-node may
 * never resume or close this generator after that (its write of the last
 * message waits for the destroyed socket to drain), so the call is not
 * left to the generator's finally to end.
 */
async function* streamResponses<O extends DescMessage, Req, M>(
  method: Method<DescMessage, O>,
  codecs: WireCodecs<Req, M>,
  deps: GrpcDeps,
  lifetime: StreamLifetime,
  context: HandlerContext,
  start: (call: CallContext, sink: StreamSink<M>) => Promise<void>,
): AsyncGenerator<MessageShape<O>> {
  const controller = new AbortController();
  const queue: { message: M; sent: () => void }[] = [];
  let ended: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const end = (error: unknown): void => {
    if (ended !== undefined) return;
    ended = { error };
    controller.abort();
    wake?.();
  };
  const observer = deps.observer ?? NO_METHOD_OBSERVER;
  observer.streamOpened();
  const forget = deps.streams.add(end, lifetime);
  // The call's signal aborts when the client goes away (nothing to tell it) or when its deadline
  // (connect-timeout-ms, grpc-timeout) passes: that one the client is told, as on the gRPC port.
  const aborted = (): void => end(isDeadline(context.signal.reason) ? context.signal.reason : undefined);
  context.signal.addEventListener('abort', aborted);
  const gone = context.values.get(CLIENT_GONE);
  const call = callContext(context, deps);
  // A reload of the auth file that takes the caller's permission away ends the stream.
  const release = call.access.hold(end);
  let closed = false;
  /** Counts and audits the call's end, once, and lets go of everything it holds. */
  const close = (code: status): void => {
    if (closed) return;
    closed = true;
    observer.streamClosed(code);
    call.access.finished(code);
    release();
    forget();
    context.signal.removeEventListener('abort', aborted);
    gone.removeEventListener('abort', leave);
    controller.abort();
    for (const { sent } of queue.splice(0)) sent();
  };
  // The status the call had come to when its client left, if any (its deadline passed, shutdown), else CANCELLED.
  const leave = (): void => {
    end(undefined);
    close(ended?.error === undefined ? status.CANCELLED : Number(fail(ended.error, deps).code));
  };
  gone.addEventListener('abort', leave);
  if (gone.aborted) leave();
  let outcome: status | undefined;
  // Set while connect-node holds a message: what it throws in then is its failure to write it (the client is gone).
  let writing = false;
  try {
    const sink: StreamSink<M> = {
      signal: controller.signal,
      send: (message) =>
        ended !== undefined
          ? Promise.resolve()
          : new Promise((sent) => {
              queue.push({ message, sent });
              wake?.();
            }),
    };
    // Its deadline may have passed already (the aborted signal above told no one): then it ends so, never started.
    const notRun = deadlinePassed(context);
    if (notRun !== undefined) end(notRun);
    // A client gone before the call began (leave() closed it above) has nothing to start: no watch, no key checked after the audit.
    if (!closed && ended === undefined) {
      start(call, sink).then(
        () => end(undefined),
        (error: unknown) => end(error ?? new Error('stream handler failed')),
      );
    }
    while (!closed) {
      const next = queue.shift();
      if (next !== undefined) {
        const answer = toAnswer(method, codecs.responseSerialize(next.message), context);
        writing = true;
        yield answer;
        writing = false;
        next.sent();
      } else if (ended !== undefined) break;
      else await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    if (closed) return;
    if (ended?.error !== undefined) throw fail(ended.error, deps);
    if (!context.signal.aborted) outcome = status.OK;
  } catch (error) {
    if (writing || closed) {
      // Nothing can reach the client now; neither is this a server error to report.
      outcome = status.CANCELLED;
      throw new ConnectError('the client went away', Code.Canceled, undefined, undefined, error);
    }
    const failure = fail(error, deps);
    outcome = Number(failure.code); // Connect and gRPC number their codes alike
    throw failure;
  } finally {
    // A client that goes away may also close this generator mid-yield, which leaves outcome unset.
    close(outcome ?? status.CANCELLED);
  }
}

/**
 * A response for connect-node to send, as protobuf-es reads its encoding.
 * One that would not fit in a JSON string (json-size.ts) ends the call with
 * RESOURCE_EXHAUSTED, as the gRPC port ends a call whose answer is past a
 * message limit, saying what to do instead.
 */
function toAnswer<O extends DescMessage>(method: Method<DescMessage, O>, encoded: Uint8Array, context: HandlerContext): MessageShape<O> {
  const answer = fromBinary(method.output, encoded);
  // Up to about 32 MiB (every answer but a few) this one comparison is all it costs.
  if (encoded.length > ALWAYS_FITS_JSON_BYTES && isJson(context) && tooLargeForJson(method.output, answer, encoded.length)) {
    const size = `${Math.round(encoded.length / 2 ** 20)} MiB as protobuf`;
    const limit = `a JSON message is one JavaScript string, at most ${Math.round(MAX_JSON_CHARS / 2 ** 20)} Mi characters`;
    const hint = TOO_LARGE_HINTS[method.name] ?? TOO_LARGE_HINTS.other;
    throw new ConnectError(`this ${method.name} answer is too large to send as JSON (${size}; ${limit}): ${hint}`, Code.ResourceExhausted);
  }
  return answer;
}

const PROTOBUF_INSTEAD =
  'use the protobuf format (application/proto; application/connect+proto for a stream; Connect clients: useBinaryFormat)';

/** What to do about an answer too large for JSON, by method. */
const TOO_LARGE_HINTS: Record<string, string> = {
  List: `ask for a smaller pageSize, or ${PROTOBUF_INSTEAD}`,
  Watch: `one revision's events are that large; watch with "fragment": true (messages of about 1 MiB), or with the protobuf format (application/connect+proto; Connect clients: useBinaryFormat)`,
  Txn: `the transaction was carried out; read its keys with smaller calls, or ${PROTOBUF_INSTEAD}`,
  Update: `the update was carried out; ${PROTOBUF_INSTEAD}`,
  other: PROTOBUF_INSTEAD,
};

/** Whether connect-node answers this call in JSON (application/json, connect+json, grpc-web+json); it set the content type already. */
function isJson(context: HandlerContext): boolean {
  return context.responseHeader.get('content-type')?.includes('json') === true;
}

/**
 * DEADLINE_EXCEEDED if the call's deadline passed before it reached its
 * handler (its body came after it): such a call is not run, as connect-go
 * runs none, and as the gRPC port answers a deadline that passed before the
 * request came.
 */
function deadlinePassed(context: HandlerContext): ConnectError | undefined {
  if (!isDeadline(context.signal.reason)) return undefined;
  return new ConnectError('the deadline passed before the call began: it was not run', Code.DeadlineExceeded);
}

function isDeadline(reason: unknown): reason is ConnectError {
  return reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
}

/**
 * `work`, unless the call's deadline (connect-timeout-ms, grpc-timeout)
 * passes first: then DEADLINE_EXCEEDED at once, as grpc-js answers on the
 * gRPC port (connect-es leaves it to the handler). A write may still be
 * applied after, as there: the outcome of a call past its deadline is unknown.
 */
function untilDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const passed = (): void => {
      if (isDeadline(signal.reason)) reject(signal.reason);
    };
    signal.addEventListener('abort', passed, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', passed);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', passed);
        reject(error);
      },
    );
  });
}

function callContext(context: HandlerContext, deps: GrpcDeps): CallContext {
  context.values.set(HANDLED, true);
  const access = context.values.get(ACCESS);
  if (access === undefined) throw new Error('the request gate did not authenticate this call');
  const timeoutMs = context.timeoutMs();
  return { store: deps.store, access, deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs };
}

/** The request as the gRPC path would have decoded it from the same message in protobuf binary. */
function decode<I extends DescMessage, Req, Res>(
  method: Method<I, DescMessage>,
  codecs: WireCodecs<Req, Res>,
  request: MessageShape<I>,
): Req {
  const unpaired = findUnpairedSurrogate(reflect(method.input, request));
  if (unpaired !== undefined) {
    throw new InvalidArgumentError(
      `request could not be decoded: a string field is not valid UTF-8 (${unpaired} has an unpaired surrogate)`,
    );
  }
  const decoded: Req | InvalidArgumentError = codecs.requestDeserialize(Buffer.from(toBinary(method.input, request)));
  if (decoded instanceof InvalidArgumentError) throw decoded;
  return decoded;
}

function fail(error: unknown, deps: GrpcDeps): ConnectError {
  if (failsTheStore(error)) deps.onStoreFailed();
  // A KeepAlive request that did not decode reaches the handler as connect-es's error: counted with the code it is answered with.
  rewordConnectFailure(error, deps.logger);
  return toConnectError(error, deps.logger);
}
