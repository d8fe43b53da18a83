/**
 * kv.v1.KeyValueService for connect-node: one line per RPC, the same
 * handlers and codecs as the gRPC service (key-value-service.ts), and for
 * each the checks of its JSON requests (json-request.ts).
 */
import type { DescMethod } from '@bufbuild/protobuf';
import type { ConnectRouter, ConnectRouterOptions } from '@connectrpc/connect';
import type { MethodImpl } from '@connectrpc/connect';
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
import { jsonRequestOptions } from './json-request';

/** The protocols the router serves, which connect's router takes from each RPC's own options rather than its own. */
export type Protocols = Pick<ConnectRouterOptions, 'connect' | 'grpcWeb' | 'grpc'>;

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

export function addKeyValueService(
  router: ConnectRouter,
  grpcDeps: GrpcDeps,
  observerOf: (name: string) => MethodObserver,
  protocols: Protocols,
): void {
  const codecs = keyValueServiceDefinition();
  const rpc = KeyValueService.method;
  const observed = (name: string): GrpcDeps => ({ ...grpcDeps, observer: observerOf(name) });
  const add = <M extends DescMethod>(method: M, implementation: MethodImpl<M>): void => {
    const options: ConnectRouterOptions = { ...protocols, jsonOptions: jsonRequestOptions(method.input) };
    router.rpc(method, implementation, options);
  };
  add(rpc.get, connectUnary(rpc.get, codecs.get, handleGet, observed('Get')));
  add(rpc.set, connectUnary(rpc.set, codecs.set, handleSet, observed('Set')));
  add(rpc.delete, connectUnary(rpc.delete, codecs.delete, handleDelete, observed('Delete')));
  add(rpc.listKeys, connectUnary(rpc.listKeys, codecs.listKeys, handleListKeys, observed('ListKeys')));
  add(rpc.clear, connectUnary(rpc.clear, codecs.clear, handleClear, observed('Clear')));
  add(rpc.watch, connectServerStream(rpc.watch, codecs.watch, handleWatch, observed('Watch'), 'open-ended'));
  add(rpc.txn, connectUnary(rpc.txn, codecs.txn, handleTxn, observed('Txn')));
  add(rpc.update, connectUnary(rpc.update, codecs.update, handleUpdate, observed('Update')));
  add(rpc.list, connectUnary(rpc.list, codecs.list, handleList, observed('List')));
  add(rpc.grantLease, connectUnary(rpc.grantLease, codecs.grantLease, handleGrantLease, observed('GrantLease')));
  add(rpc.keepAlive, connectBidiStream(rpc.keepAlive, codecs.keepAlive, handleKeepAlive, observed('KeepAlive')));
  add(rpc.revokeLease, connectUnary(rpc.revokeLease, codecs.revokeLease, handleRevokeLease, observed('RevokeLease')));
  add(rpc.leaseInfo, connectUnary(rpc.leaseInfo, codecs.leaseInfo, handleLeaseInfo, observed('LeaseInfo')));
  add(rpc.listLeases, connectUnary(rpc.listLeases, codecs.listLeases, handleListLeases, observed('ListLeases')));
  add(rpc.backup, connectServerStream(rpc.backup, codecs.backup, handleBackup, observed('Backup'), 'finite'));
}
