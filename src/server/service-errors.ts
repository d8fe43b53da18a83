/** Errors the service raises itself, before or after the store; mapped in to-status.ts. */

/** A request that is malformed as protobuf (missing value, bad page_size or page_token, a request that does not decode). */
export class InvalidArgumentError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  /** INVALID_VALUE when it is the value that cannot be stored (nested too deeply, a field without a value). */
  constructor(
    message: string,
    readonly reason: 'INVALID_ARGUMENT' | 'INVALID_VALUE' = 'INVALID_ARGUMENT',
  ) {
    super(message);
  }
}

/**
 * A gRPC call sent to the HTTP port, which serves Connect and gRPC-Web only:
 * the message names the gRPC port. `reflection`: the call was to server
 * reflection, which gRPC tools (grpcurl list) take for "no reflection here"
 * when it fails UNIMPLEMENTED, and then print only that.
 */
export class NotGrpcPortError extends Error {
  readonly code = 'NOT_GRPC';
  constructor(
    message: string,
    readonly reflection: boolean,
  ) {
    super(message);
  }
}
