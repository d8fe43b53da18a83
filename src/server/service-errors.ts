/** Errors the service raises itself, before or after the store; mapped in to-status.ts. */

/** A request that is malformed as protobuf (missing value, bad page_size or page_token, a request that does not decode). */
export class InvalidArgumentError extends Error {
  readonly code = 'INVALID_ARGUMENT';
}
