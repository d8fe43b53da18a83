/**
 * kv.v1.KeyValueService for connect-node: one line per RPC, the same
 * handlers and codecs as the gRPC service (key-value-service.ts).
 */
import type { ConnectRouter } from '@connectrpc/connect';
import { KeyValueService } from '../../gen/kv/v1/kv_pb';
import { type CallObserver, type MethodObserver, NO_METHOD_OBSERVER } from '../call-observer';
import type { GrpcDeps } from '../grpc-call';
import { handleBackup } from '../handlers/backup';
import { handleClear } from '../handlers/clear';
import { handleDelete } from '../handlers/delete';
import { handleGet } from '../handlers/get';
import { handleKeepAlive } from '../handlers/keep-alive';
import { handleGrantLease, handleLeaseInfo, handleListLeases, handleRevokeLease } from '../handlers/leases';
import { handleList } from '../handlers/list';
import { handleListKeys } from '../handlers/list-keys';
import { handleSet } from '../handlers/set';
import { handleTxn } from '../handlers/txn';
import { handleUpdate } from '../handlers/update';
import { handleWatch } from '../handlers/watch';
import { keyValueServiceDefinition } from '../key-value-service';
import { connectBidiStream, connectServerStream, connectUnary } from './connect-call';

/**
 * Each method's observer, made once (CallObserver.method sets up its
 * metrics), for the handlers and the request gate alike: calls count in the
 * same metrics as on the gRPC port, under the same method names.
 */
export function methodObservers(calls: CallObserver | undefined): (name: string) => MethodObserver {
  const made = new Map<string, MethodObserver>();
  return (name) => {
    let observer = made.get(name);
    if (observer === undefined) made.set(name, (observer = calls?.method(name) ?? NO_METHOD_OBSERVER));
    return observer;
  };
}

export function addKeyValueService(router: ConnectRouter, grpcDeps: GrpcDeps, observerOf: (name: string) => MethodObserver): void {
  const codecs = keyValueServiceDefinition();
  const rpc = KeyValueService.method;
  const observed = (name: string): GrpcDeps => ({ ...grpcDeps, observer: observerOf(name) });
  router.service(KeyValueService, {
    get: connectUnary(rpc.get, codecs.get, handleGet, observed('Get')),
    set: connectUnary(rpc.set, codecs.set, handleSet, observed('Set')),
    delete: connectUnary(rpc.delete, codecs.delete, handleDelete, observed('Delete')),
    listKeys: connectUnary(rpc.listKeys, codecs.listKeys, handleListKeys, observed('ListKeys')),
    clear: connectUnary(rpc.clear, codecs.clear, handleClear, observed('Clear')),
    watch: connectServerStream(rpc.watch, codecs.watch, handleWatch, observed('Watch'), 'open-ended'),
    txn: connectUnary(rpc.txn, codecs.txn, handleTxn, observed('Txn')),
    update: connectUnary(rpc.update, codecs.update, handleUpdate, observed('Update')),
    list: connectUnary(rpc.list, codecs.list, handleList, observed('List')),
    grantLease: connectUnary(rpc.grantLease, codecs.grantLease, handleGrantLease, observed('GrantLease')),
    keepAlive: connectBidiStream(rpc.keepAlive, codecs.keepAlive, handleKeepAlive, observed('KeepAlive')),
    revokeLease: connectUnary(rpc.revokeLease, codecs.revokeLease, handleRevokeLease, observed('RevokeLease')),
    leaseInfo: connectUnary(rpc.leaseInfo, codecs.leaseInfo, handleLeaseInfo, observed('LeaseInfo')),
    listLeases: connectUnary(rpc.listLeases, codecs.listLeases, handleListLeases, observed('ListLeases')),
    backup: connectServerStream(rpc.backup, codecs.backup, handleBackup, observed('Backup'), 'finite'),
  });
}
