/**
 * kv.v1.KeyValueService for connect-node: one line per RPC, the same
 * handlers and codecs as the gRPC service (key-value-service.ts).
 */
import type { ConnectRouter } from '@connectrpc/connect';
import { KeyValueService } from '../../gen/kv/v1/kv_pb';
import type { GrpcDeps } from '../grpc-call';
import { handleClear } from '../handlers/clear';
import { handleDelete } from '../handlers/delete';
import { handleGet } from '../handlers/get';
import { handleListKeys } from '../handlers/list-keys';
import { handleSet } from '../handlers/set';
import { handleWatch } from '../handlers/watch';
import { keyValueServiceDefinition } from '../key-value-service';
import { connectServerStream, connectUnary } from './connect-call';

export function addKeyValueService(router: ConnectRouter, deps: GrpcDeps): void {
  const codecs = keyValueServiceDefinition();
  const rpc = KeyValueService.method;
  router.service(KeyValueService, {
    get: connectUnary(rpc.get, codecs.get, handleGet, deps),
    set: connectUnary(rpc.set, codecs.set, handleSet, deps),
    delete: connectUnary(rpc.delete, codecs.delete, handleDelete, deps),
    listKeys: connectUnary(rpc.listKeys, codecs.listKeys, handleListKeys, deps),
    clear: connectUnary(rpc.clear, codecs.clear, handleClear, deps),
    watch: connectServerStream(rpc.watch, codecs.watch, handleWatch, deps),
  });
}
