/**
 * kv.v1.KeyValueService for connect-node: one line per RPC, the same
 * handlers and codecs as the gRPC service (key-value-service.ts).
 */
import type { ConnectRouter } from '@connectrpc/connect';
import { KeyValueService } from '../../gen/kv/v1/kv_pb';
import type { GrpcDeps } from '../grpc-call';
import { handleBackup } from '../handlers/backup';
import { handleClear } from '../handlers/clear';
import { handleDelete } from '../handlers/delete';
import { handleGet } from '../handlers/get';
import { handleKeepAlive } from '../handlers/keep-alive';
import { handleGrantLease, handleLeaseInfo, handleRevokeLease } from '../handlers/leases';
import { handleList } from '../handlers/list';
import { handleListKeys } from '../handlers/list-keys';
import { handleSet } from '../handlers/set';
import { handleTxn } from '../handlers/txn';
import { handleUpdate } from '../handlers/update';
import { handleWatch } from '../handlers/watch';
import { keyValueServiceDefinition } from '../key-value-service';
import { connectBidiStream, connectServerStream, connectUnary } from './connect-call';

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
    txn: connectUnary(rpc.txn, codecs.txn, handleTxn, deps),
    update: connectUnary(rpc.update, codecs.update, handleUpdate, deps),
    list: connectUnary(rpc.list, codecs.list, handleList, deps),
    grantLease: connectUnary(rpc.grantLease, codecs.grantLease, handleGrantLease, deps),
    keepAlive: connectBidiStream(rpc.keepAlive, codecs.keepAlive, handleKeepAlive, deps),
    revokeLease: connectUnary(rpc.revokeLease, codecs.revokeLease, handleRevokeLease, deps),
    leaseInfo: connectUnary(rpc.leaseInfo, codecs.leaseInfo, handleLeaseInfo, deps),
    backup: connectServerStream(rpc.backup, codecs.backup, handleBackup, deps),
  });
}
