/**
 * Adapts handlers to grpc-js: builds the call's context, answers a request
 * that did not decode with INVALID_ARGUMENT, and maps whatever a handler
 * throws to a status in one place (to-status.ts).
 */
import type { PeerCertificate } from 'node:tls';
import {
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerDuplexStream,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  status,
  type StatusObject,
} from '@grpc/grpc-js';
import type { Logger } from '../logger';
import { failsTheStore } from '../store/errors';
import type { KeyValueStore } from '../store/key-value-store';
import { type Access, openAccess } from './access';
import type { CallContext } from './call-context';
import { NO_METHOD_OBSERVER, type MethodObserver } from './call-observer';
import { InvalidArgumentError } from './service-errors';
import { toGrpcStatus } from './to-status';

/** What the transport knows of a caller, for authenticate(). */
export interface Caller {
  metadata: Metadata;
  /** The peer address, e.g. "127.0.0.1:51234" or "[::1]:51234". */
  peer: string;
  /** The full method name, e.g. "/kv.v1.KeyValueService/Set". */
  method: string;
  /** The client's certificate, on a mutual TLS connection whose certificate verified. */
  certificate?: PeerCertificate;
}

export interface GrpcDeps {
  store: KeyValueStore;
  logger: Logger;
  /**
   * What this caller may do; throws (UnauthenticatedError, AuthRateLimitedError) for bad credentials.
   * Absent when no authentication is configured: every caller may do anything, and its details are not gathered.
   */
  authenticate?: (caller: Caller) => Access;
  /** Called when the store reports it can no longer write, so health can say NOT_SERVING. */
  onStoreFailed: () => void;
  /** The open streaming calls, which shutdown ends. */
  streams: OpenStreams;
  /** Told of each call of the method being adapted (metrics); key-value-service.ts gives each method its own. */
  observer?: MethodObserver;
}

/** A unary handler: resolves with the response or rejects; one that is not async may also throw. */
export type Handler<Req, Res> = (context: CallContext, request: Req) => Promise<Res>;

/** Where a streaming handler sends its messages. */
export interface StreamSink<M> {
  /** Sends a message; resolves once the transport can take another (backpressure), or when the call has ended. */
  send(message: M): Promise<void>;
  /** Aborted when the call ends: cancelled by the client, or ended by shutdown. */
  signal: AbortSignal;
}

/** A streaming handler: resolves (the call ends OK) or rejects (the call ends with the mapped status). */
export type StreamHandler<Req, M> = (context: CallContext, request: Req, sink: StreamSink<M>) => Promise<void>;

/**
 * How long a streaming call runs, which decides how shutdown treats it.
 * 'open-ended' (Watch, KeepAlive): until its client stops it, so it would
 * hold the drain for the whole grace period; shutdown ends it as the drain
 * starts, and the client resumes elsewhere or later. 'finite' (Backup): it
 * ends by itself, so like a unary call it may finish within the grace.
 */
export type StreamLifetime = 'open-ended' | 'finite';

/** The streaming calls in progress, so shutdown can end them: the open-ended ones at once, the rest when the grace runs out. */
export class OpenStreams {
  private readonly ends = new Map<(error: unknown) => void, StreamLifetime>();

  add(end: (error: unknown) => void, lifetime: StreamLifetime): () => void {
    this.ends.set(end, lifetime);
    return () => this.ends.delete(end);
  }

  /** Ends every open-ended stream with `error`'s status. */
  endOpenEnded(error: unknown): void {
    for (const [end, lifetime] of [...this.ends]) if (lifetime === 'open-ended') end(error);
  }

  /** Ends every open stream with `error`'s status. */
  endAll(error: unknown): void {
    for (const end of [...this.ends.keys()]) end(error);
  }

  get size(): number {
    return this.ends.size;
  }
}

/** How a unary call is answered: a status (error), or the response to encode. */
export type UnaryAnswer<Res> = (error: Partial<StatusObject> | null, response?: Res) => void;

/**
 * One unary call, whatever transport carries it (grpc-js here, or
 * unary-over-http2.ts): credentials first (`caller` is asked only when
 * authentication is configured), then the request or its decode error, the
 * handler, and the answer, counted by the method's observer.
 */
/** `deadline`: when the caller stops waiting (ms since the epoch), if it said. */
export type UnaryCall<Req, Res> = ((
  caller: () => Caller,
  request: Req | InvalidArgumentError,
  answer: UnaryAnswer<Res>,
  deadline?: number,
) => void) & {
  /**
   * The credentials step alone, for a transport that has the call's headers
   * before its request (unary-over-http2.ts): a caller refused here is
   * answered (`refuse`) without its request being read or kept.
   */
  admit(caller: () => Caller): Admission<Req, Res>;
};

/**
 * What the credentials step decided: go on with the request (`run`), or end
 * the call with a status of the transport's own (`end`: a request too large
 * or malformed, a deadline passed before it came); or the refusal to answer
 * with. Each is counted as the call's outcome; a call never run nor ended
 * (its client went away first) is not counted, as grpc-js does not count it.
 */
export type Admission<Req, Res> =
  | {
      admitted: true;
      run: (request: Req | InvalidArgumentError, answer: UnaryAnswer<Res>, deadline?: number) => void;
      end: (answer: (error: Partial<StatusObject>) => void, reply: Partial<StatusObject>) => void;
    }
  | { admitted: false; refuse: (answer: (error: Partial<StatusObject>) => void) => void };

export function unaryCall<Req, Res>(handler: Handler<Req, Res>, deps: GrpcDeps): UnaryCall<Req, Res> {
  const observer = deps.observer ?? NO_METHOD_OBSERVER;
  const fail = (answer: (error: Partial<StatusObject>) => void, startedAt: number, error: unknown, access?: Access): void => {
    if (failsTheStore(error)) deps.onStoreFailed();
    const reply = toGrpcStatus(error, deps.logger);
    answer(reply);
    observer.answered(startedAt, reply.code ?? status.UNKNOWN);
    access?.finished(reply.code ?? status.UNKNOWN);
  };
  const admit = (caller: () => Caller): Admission<Req, Res> => {
    let access: Access;
    try {
      // Credentials first: a caller without them learns nothing, not even that its request was malformed.
      access = accessOf(deps, caller);
    } catch (error) {
      return { admitted: false, refuse: (answer) => fail(answer, observer.started(), error) };
    }
    return {
      admitted: true,
      run: (request, answer, deadline) => run(observer.started(), access, request, answer, deadline),
      end: (answer, reply) => {
        const startedAt = observer.started();
        answer(reply);
        observer.answered(startedAt, reply.code ?? status.UNKNOWN);
        access.finished(reply.code ?? status.UNKNOWN);
      },
    };
  };
  const run = (
    startedAt: number,
    access: Access,
    request: Req | InvalidArgumentError,
    answer: UnaryAnswer<Res>,
    deadline?: number,
  ): void => {
    // strictDecoder (decode-request.ts) hands over an error in place of a request that did not decode.
    if (request instanceof InvalidArgumentError) return fail(answer, startedAt, request, access);
    const context: CallContext = { store: deps.store, access, deadline };
    let handling: Promise<Res>;
    try {
      handling = handler(context, request);
    } catch (error) {
      // A handler that is not async (handlers/set.ts) refuses a request by throwing.
      return fail(answer, startedAt, error, access);
    }
    handling.then(
      (response) => {
        answer(null, response);
        observer.answered(startedAt, status.OK);
        access.finished(status.OK);
      },
      (error: unknown) => fail(answer, startedAt, error, access),
    );
  };
  const call = (caller: () => Caller, request: Req | InvalidArgumentError, answer: UnaryAnswer<Res>, deadline?: number): void => {
    const admission = admit(caller);
    if (admission.admitted) admission.run(request, answer, deadline);
    else admission.refuse(answer);
  };
  return Object.assign(call, { admit });
}

/**
 * The credentials step of a streaming call, taken from its headers before
 * grpc-js reads its requests (unary-over-http2.ts; a unary call has
 * UnaryCall.admit): undefined if the caller may go on (the handler checks
 * its credentials again), or how to answer its refusal, counted as the
 * method's streams are.
 */
export type StreamGate = (
  caller: () => Caller,
) => { admitted: false; refuse: (answer: (error: Partial<StatusObject>) => void) => void } | undefined;

export function streamGate(deps: GrpcDeps): StreamGate {
  const observer = deps.observer ?? NO_METHOD_OBSERVER;
  return (caller) => {
    try {
      accessOf(deps, caller);
      return undefined;
    } catch (error) {
      return {
        admitted: false,
        refuse: (answer) => {
          observer.streamOpened();
          const reply = toGrpcStatus(error, deps.logger);
          answer(reply);
          observer.streamClosed(reply.code ?? status.UNKNOWN);
        },
      };
    }
  };
}

/** A unary call as grpc-js hands it over. */
export function unary<Req, Res>(call: UnaryCall<Req, Res>): handleUnaryCall<Req, Res> {
  return (grpcCall: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const deadline = grpcCall.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    call(() => callerOf(grpcCall), grpcCall.request, callback, Number.isFinite(at) ? at : undefined);
  };
}

/** A bidirectional-streaming handler: requests come as they arrive; resolves when the client is done. */
export type DuplexHandler<Req, M> = (context: CallContext, requests: AsyncIterable<Req>, sink: StreamSink<M>) => Promise<void>;

/** A server-streaming handler for grpc-js; M is what the method's responseSerialize encodes. */
export function serverStream<Req, M>(
  handler: StreamHandler<Req, M>,
  deps: GrpcDeps,
  lifetime: StreamLifetime,
): handleServerStreamingCall<Req, M> {
  return (call: ServerWritableStream<Req, M>): void => {
    const stream = openStream(call, deps, lifetime);
    // Credentials first, as for unary calls.
    const context = stream.authenticate();
    if (context === undefined) return;
    const request: Req | InvalidArgumentError = call.request;
    if (request instanceof InvalidArgumentError) return stream.end(request);
    stream.run(handler(context, request, stream.sink));
  };
}

/** A bidirectional-streaming handler for grpc-js. */
export function duplexStream<Req, M>(handler: DuplexHandler<Req, M>, deps: GrpcDeps): handleBidiStreamingCall<Req, M> {
  return (call: ServerDuplexStream<Req, M>): void => {
    // A bidirectional call (KeepAlive) lasts as long as its client keeps sending.
    const stream = openStream(call, deps, 'open-ended');
    const context = stream.authenticate();
    if (context !== undefined) stream.run(handler(context, requestsOf(call), stream.sink));
  };
}

/**
 * The requests of a duplex call; one that did not decode ends the call with
 * INVALID_ARGUMENT. Read without destroying the call when they end (a plain
 * `for await` destroys the whole duplex once the client half-closes, and the
 * call's status could then never be sent: the client would wait forever).
 */
async function* requestsOf<Req>(call: ServerDuplexStream<Req, unknown>): AsyncGenerator<Req, void, undefined> {
  for await (const request of call.iterator({ destroyOnReturn: false }) as AsyncIterable<Req | InvalidArgumentError>) {
    if (request instanceof InvalidArgumentError) throw request;
    yield request;
  }
}

interface OpenStream<M> {
  sink: StreamSink<M>;
  /** The call's context, or undefined if the caller's credentials were refused (the call is ended then). */
  authenticate(): CallContext | undefined;
  /** Ends the call when the handler settles: OK, or the handler's error as a status. */
  run(handling: Promise<void>): void;
  end(error: unknown): void;
}

/** What both kinds of stream share: the sink with backpressure, shutdown and cancellation, the status at the end. */
function openStream<M>(
  call: ServerWritableStream<unknown, M> | ServerDuplexStream<unknown, M>,
  deps: GrpcDeps,
  lifetime: StreamLifetime,
): OpenStream<M> {
  const controller = new AbortController();
  const observer = deps.observer ?? NO_METHOD_OBSERVER;
  let ended = false;
  let access: Access | undefined;
  let release = (): void => undefined;
  const end = (error: unknown): void => {
    if (ended) return;
    ended = true;
    forget();
    release();
    controller.abort();
    if (error === undefined) {
      call.end();
      observer.streamClosed(status.OK);
      access?.finished(status.OK);
      return;
    }
    if (failsTheStore(error)) deps.onStoreFailed();
    const answer = toGrpcStatus(error, deps.logger);
    call.emit('error', answer);
    observer.streamClosed(answer.code ?? status.UNKNOWN);
    access?.finished(answer.code ?? status.UNKNOWN);
  };
  observer.streamOpened();
  const forget = deps.streams.add(end, lifetime);
  call.once('cancelled', () => {
    if (!ended) {
      observer.streamClosed(status.CANCELLED);
      access?.finished(status.CANCELLED);
    }
    ended = true;
    forget();
    release();
    controller.abort();
  });
  const sink: StreamSink<M> = {
    signal: controller.signal,
    send: (message) => {
      if (ended) return Promise.resolve();
      if (call.write(message)) return Promise.resolve();
      return new Promise((resolve) => {
        const done = (): void => {
          call.off('drain', done);
          controller.signal.removeEventListener('abort', done);
          resolve();
        };
        call.on('drain', done);
        controller.signal.addEventListener('abort', done);
      });
    },
  };
  return {
    sink,
    end,
    authenticate: () => {
      try {
        access = accessOf(deps, () => callerOf(call));
        // A reload of the auth file that takes the caller's permission away ends the stream.
        if (!ended) release = access.hold(end);
        return { store: deps.store, access };
      } catch (error) {
        end(error);
        return undefined;
      }
    },
    run: (handling) => {
      handling.then(
        () => end(undefined),
        (error: unknown) => end(error),
      );
    },
  };
}

/** What the caller may do; the caller's peer and certificate are looked up only for an authenticator. */
function accessOf(deps: GrpcDeps, caller: () => Caller): Access {
  return deps.authenticate === undefined ? openAccess : deps.authenticate(caller());
}

/** The caller as authenticate() sees it; the certificate only when TLS verified it (grpc-js gives none otherwise). */
export function callerOf(call: Pick<ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPeer' | 'getPath' | 'getAuthContext'>): Caller {
  return { metadata: call.metadata, peer: call.getPeer(), method: call.getPath(), certificate: call.getAuthContext().sslPeerCertificate };
}
