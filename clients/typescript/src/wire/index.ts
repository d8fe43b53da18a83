/**
 * The kv.v1 wire helpers the SDK and the server share (`@kv/client/wire`):
 * JSON values as google.protobuf.Value, the two-pass protobuf writer, and
 * what counts as loopback (where plaintext may go).
 * Not part of the SDK's stable API.
 */
export * from './json-value';
export * from './proto-writer';
export * from './entry';
export * from './json-numbers';
export * from './loopback';
