/**
 * kv.v1.KeyValueService for grpc-js: the generated service definition with
 * strict request decoders and the hand-written codecs of the hot paths, and
 * one handler per RPC (handlers/).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import {
  ClearRequest,
  DeleteRequest,
  GetRequest,
  KeyValueServiceService,
  type KeyValueServiceServer,
  ListKeysRequest,
  WatchRequest,
} from '../gen/kv/v1/kv';
import { withStrictDecoding } from './decode-request';
import { type GrpcDeps, serverStream, unary } from './grpc-call';
import { handleClear } from './handlers/clear';
import { handleDelete } from './handlers/delete';
import { handleGet } from './handlers/get';
import { handleListKeys } from './handlers/list-keys';
import { handleSet } from './handlers/set';
import { handleWatch } from './handlers/watch';
import { decodeSetRequest } from './wire/decode-set-request';
import { encodeGetResponse } from './wire/encode-get-response';
import { encodeWatchResponse } from './wire/encode-watch-response';

export const SERVICE_NAME = 'kv.v1.KeyValueService';

export function keyValueServiceDefinition(): ServiceDefinition {
  const definition = withStrictDecoding(KeyValueServiceService, {
    get: GetRequest,
    set: { decode: decodeSetRequest },
    delete: DeleteRequest,
    listKeys: ListKeysRequest,
    clear: ClearRequest,
    watch: WatchRequest,
  });
  return {
    ...definition,
    get: { ...definition.get, responseSerialize: encodeGetResponse },
    // The Watch handler sends the store's batches (handlers/watch.ts); this encodes them.
    watch: { ...definition.watch, responseSerialize: encodeWatchResponse },
  };
}

export function createKeyValueService(deps: GrpcDeps): KeyValueServiceServer {
  return {
    get: unary(handleGet, deps),
    set: unary(handleSet, deps),
    delete: unary(handleDelete, deps),
    listKeys: unary(handleListKeys, deps),
    clear: unary(handleClear, deps),
    watch: serverStream(handleWatch, deps),
  };
}
