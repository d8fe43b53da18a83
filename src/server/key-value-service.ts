/**
 * kv.v1.KeyValueService for grpc-js: one row per RPC, naming how its
 * request is decoded (strictly: a request that does not decode is
 * INVALID_ARGUMENT, see decode-request.ts), how its answer is encoded, and
 * its handler (handlers/). Requests and responses that carry JSON values go
 * through the hand-written codecs in wire/, the rest through the generated
 * ones. The paths and streaming kinds come from the generated definition.
 */
import type { ServiceDefinition, UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  BackupRequest,
  ClearRequest,
  ClearResponse,
  DeleteRequest,
  DeleteResponse,
  GetRequest,
  GrantLeaseRequest,
  GrantLeaseResponse,
  KeepAliveRequest,
  KeepAliveResponse,
  KeyValueServiceService,
  LeaseInfoRequest,
  LeaseInfoResponse,
  ListKeysRequest,
  ListKeysResponse,
  ListRequest,
  RevokeLeaseRequest,
  RevokeLeaseResponse,
  WatchRequest,
} from '../gen/kv/v1/kv';
import type { CallObserver } from './call-observer';
import { strictDecoder } from './decode-request';
import { type GrpcDeps, duplexStream, serverStream, unary } from './grpc-call';
import { handleBackup } from './handlers/backup';
import { handleClear } from './handlers/clear';
import { handleDelete } from './handlers/delete';
import { handleGet } from './handlers/get';
import { handleKeepAlive } from './handlers/keep-alive';
import { handleGrantLease, handleLeaseInfo, handleRevokeLease } from './handlers/leases';
import { handleList } from './handlers/list';
import { handleListKeys } from './handlers/list-keys';
import { handleSet } from './handlers/set';
import { handleTxn } from './handlers/txn';
import { handleUpdate } from './handlers/update';
import { handleWatch } from './handlers/watch';
import { decodeSetRequest, decodeTxnRequest, decodeUpdateRequest } from './wire/decode-requests';
import { encodeGetResponse, encodeListResponse, encodeSetResponse, encodeTxnResponse, encodeUpdateResponse } from './wire/encode-responses';
import { encodeWatchResponse } from './wire/encode-watch-response';

export const SERVICE_NAME = 'kv.v1.KeyValueService';

type Method = keyof typeof KeyValueServiceService;

interface Row {
  decode: (bytes: Buffer) => unknown;
  encode: (response: never) => Buffer;
  handle: (deps: GrpcDeps) => UntypedHandleCall;
}

/** A generated encoder as a responseSerialize. */
const encoded =
  <T>(codec: { encode(message: T): { finish(): Uint8Array } }) =>
  (message: T): Buffer =>
    Buffer.from(codec.encode(message).finish());

const ROWS: Record<Method, Row> = {
  get: { decode: strictDecoder(GetRequest), encode: encodeGetResponse, handle: (d) => unary(handleGet, d) },
  set: { decode: strictDecoder({ decode: decodeSetRequest }), encode: encodeSetResponse, handle: (d) => unary(handleSet, d) },
  delete: { decode: strictDecoder(DeleteRequest), encode: encoded(DeleteResponse), handle: (d) => unary(handleDelete, d) },
  listKeys: { decode: strictDecoder(ListKeysRequest), encode: encoded(ListKeysResponse), handle: (d) => unary(handleListKeys, d) },
  clear: { decode: strictDecoder(ClearRequest), encode: encoded(ClearResponse), handle: (d) => unary(handleClear, d) },
  watch: { decode: strictDecoder(WatchRequest), encode: encodeWatchResponse, handle: (d) => serverStream(handleWatch, d) },
  txn: { decode: strictDecoder({ decode: decodeTxnRequest }), encode: encodeTxnResponse, handle: (d) => unary(handleTxn, d) },
  update: { decode: strictDecoder({ decode: decodeUpdateRequest }), encode: encodeUpdateResponse, handle: (d) => unary(handleUpdate, d) },
  list: { decode: strictDecoder(ListRequest), encode: encodeListResponse, handle: (d) => unary(handleList, d) },
  grantLease: {
    decode: strictDecoder(GrantLeaseRequest),
    encode: encoded(GrantLeaseResponse),
    handle: (d) => unary(handleGrantLease, d),
  },
  keepAlive: {
    decode: strictDecoder(KeepAliveRequest),
    encode: encoded(KeepAliveResponse),
    handle: (d) => duplexStream(handleKeepAlive, d),
  },
  revokeLease: {
    decode: strictDecoder(RevokeLeaseRequest),
    encode: encoded(RevokeLeaseResponse),
    handle: (d) => unary(handleRevokeLease, d),
  },
  leaseInfo: {
    decode: strictDecoder(LeaseInfoRequest),
    encode: encoded(LeaseInfoResponse),
    handle: (d) => unary(handleLeaseInfo, d),
  },
  // The handler encodes its messages itself (its checksum covers their bytes).
  backup: { decode: strictDecoder(BackupRequest), encode: (bytes: Buffer) => bytes, handle: (d) => serverStream(handleBackup, d) },
};

export function keyValueServiceDefinition(): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(KeyValueServiceService).map(([method, spec]) => {
      const row = ROWS[method as Method];
      return [method, { ...spec, requestDeserialize: row.decode, responseSerialize: row.encode as (value: unknown) => Buffer }];
    }),
  );
}

/** The service's handlers; `calls` (metrics) gets an observer per method, by its name in the proto ("Get"). */
export function createKeyValueService(deps: GrpcDeps, calls?: CallObserver): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const [method, spec] of Object.entries(KeyValueServiceService)) {
    const observer = calls?.method(spec.path.slice(spec.path.lastIndexOf('/') + 1));
    implementation[method] = ROWS[method as Method].handle({ ...deps, observer });
  }
  return implementation;
}
