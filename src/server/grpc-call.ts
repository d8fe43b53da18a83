/**
 * Adapts handlers to grpc-js: builds the call's context, answers a request
 * that did not decode with INVALID_ARGUMENT, and maps whatever a handler
 * throws to a status in one place (to-status.ts).
 */
import type { handleUnaryCall, Metadata, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '../logger';
import { StoreError } from '../store/errors';
import type { KeyValueStore } from '../store/key-value-store';
import type { Access } from './access';
import type { CallContext } from './call-context';
import { InvalidArgumentError } from './service-errors';
import { toGrpcStatus } from './to-status';

/** What the transport knows of a caller, for authenticate(). */
export interface Caller {
  metadata: Metadata;
  /** The peer address, e.g. "127.0.0.1:51234". */
  peer: string;
}

export interface GrpcDeps {
  store: KeyValueStore;
  logger: Logger;
  /** What this caller may do; throws (UNAUTHENTICATED) for bad credentials. */
  authenticate: (caller: Caller) => Access;
  /** Called when the store reports it can no longer write, so health can say NOT_SERVING. */
  onStoreFailed: () => void;
}

export type Handler<Req, Res> = (context: CallContext, request: Req) => Promise<Res>;

export function unary<Req, Res>(handler: Handler<Req, Res>, deps: GrpcDeps): handleUnaryCall<Req, Res> {
  const fail = (callback: sendUnaryData<Res>, error: unknown): void => {
    if (error instanceof StoreError && error.code === 'FAILED') deps.onStoreFailed();
    callback(toGrpcStatus(error, deps.logger));
  };
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    // withStrictDecoding (decode-request.ts) hands over an error in place of a request that did not decode.
    const request: Req | InvalidArgumentError = call.request;
    if (request instanceof InvalidArgumentError) return fail(callback, request);
    let context: CallContext;
    try {
      context = { store: deps.store, access: deps.authenticate({ metadata: call.metadata, peer: call.getPeer() }) };
    } catch (error) {
      return fail(callback, error);
    }
    handler(context, request).then(
      (response) => callback(null, response),
      (error: unknown) => fail(callback, error),
    );
  };
}
