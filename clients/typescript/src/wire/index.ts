/**
 * The kv.v1 wire helpers the SDK and the server share (`@kv/client/wire`):
 * JSON values as google.protobuf.Value, and the two-pass protobuf writer.
 * Not part of the SDK's stable API.
 */
export * from './json-value';
export * from './proto-writer';
export * from './entry';
export * from './json-numbers';
