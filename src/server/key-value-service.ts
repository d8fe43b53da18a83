/**
 * kv.v1.KeyValueService for grpc-js: one row per RPC, naming how its
 * request is decoded (strictly: a request that does not decode is
 * INVALID_ARGUMENT, see decode-request.ts), how its answer is encoded, and
 * its handler (handlers/). Requests and responses that carry JSON values go
 * through the hand-written codecs in wire/, the rest through the generated
 * ones. The paths and streaming kinds come from the generated definition.
 */
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
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
  ListLeasesRequest,
  ListLeasesResponse,
  ListRequest,
  RevokeLeaseRequest,
  RevokeLeaseResponse,
  WatchRequest,
} from '../gen/kv/v1/kv';
import type { CallObserver } from './call-observer';
import { strictDecoder } from './decode-request';
import {
  type DuplexHandler,
  type GrpcDeps,
  type Handler,
  type StreamHandler,
  type StreamGate,
  type StreamLifetime,
  type UnaryCall,
  duplexStream,
  serverStream,
  streamGate,
  unary,
  unaryCall,
} from './grpc-call';
import { handleBackup } from './handlers/backup';
import { handleClear } from './handlers/clear';
import { handleDelete } from './handlers/delete';
import { handleGet } from './handlers/get';
import { handleKeepAlive } from './handlers/keep-alive';
import { handleGrantLease, handleLeaseInfo, handleListLeases, handleRevokeLease } from './handlers/leases';
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

/** How a method's calls are handled: unary, server-streaming or bidirectional (grpc-call.ts adapts each). */
type Handling =
  | { unary: Handler<never, unknown> }
  | { serverStream: StreamHandler<never, unknown>; lifetime: StreamLifetime }
  | { duplex: DuplexHandler<never, unknown> };

type Row = Handling & {
  decode: (bytes: Buffer) => unknown;
  encode: (response: never) => Buffer;
};

/** A generated encoder as a responseSerialize. */
const encoded =
  <T>(codec: { encode(message: T): { finish(): Uint8Array } }) =>
  (message: T): Buffer =>
    Buffer.from(codec.encode(message).finish());

const ROWS: Record<Method, Row> = {
  get: { decode: strictDecoder(GetRequest), encode: encodeGetResponse, unary: handleGet },
  set: { decode: strictDecoder({ decode: decodeSetRequest }), encode: encodeSetResponse, unary: handleSet },
  delete: { decode: strictDecoder(DeleteRequest, 'DeleteRequest'), encode: encoded(DeleteResponse), unary: handleDelete },
  listKeys: { decode: strictDecoder(ListKeysRequest), encode: encoded(ListKeysResponse), unary: handleListKeys },
  clear: { decode: strictDecoder(ClearRequest), encode: encoded(ClearResponse), unary: handleClear },
  watch: {
    decode: strictDecoder(WatchRequest, 'WatchRequest'),
    encode: encodeWatchResponse,
    serverStream: handleWatch,
    lifetime: 'open-ended',
  },
  txn: { decode: strictDecoder({ decode: decodeTxnRequest }), encode: encodeTxnResponse, unary: handleTxn },
  update: { decode: strictDecoder({ decode: decodeUpdateRequest }), encode: encodeUpdateResponse, unary: handleUpdate },
  list: { decode: strictDecoder(ListRequest), encode: encodeListResponse, unary: handleList },
  grantLease: {
    decode: strictDecoder(GrantLeaseRequest, 'GrantLeaseRequest'),
    encode: encoded(GrantLeaseResponse),
    unary: handleGrantLease,
  },
  keepAlive: {
    decode: strictDecoder(KeepAliveRequest, 'KeepAliveRequest'),
    encode: encoded(KeepAliveResponse),
    duplex: handleKeepAlive,
  },
  revokeLease: {
    decode: strictDecoder(RevokeLeaseRequest, 'RevokeLeaseRequest'),
    encode: encoded(RevokeLeaseResponse),
    unary: handleRevokeLease,
  },
  leaseInfo: {
    decode: strictDecoder(LeaseInfoRequest, 'LeaseInfoRequest'),
    encode: encoded(LeaseInfoResponse),
    unary: handleLeaseInfo,
  },
  listLeases: {
    decode: strictDecoder(ListLeasesRequest),
    encode: encoded(ListLeasesResponse),
    unary: handleListLeases,
  },
  // The handler encodes its messages itself (its checksum covers their bytes).
  backup: { decode: strictDecoder(BackupRequest), encode: (bytes: Buffer) => bytes, serverStream: handleBackup, lifetime: 'finite' },
};

export function keyValueServiceDefinition(): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(KeyValueServiceService).map(([method, spec]) => {
      const row = ROWS[method as Method];
      return [method, { ...spec, requestDeserialize: row.decode, responseSerialize: row.encode as (value: unknown) => Buffer }];
    }),
  );
}

/** A unary method as unary-over-http2.ts serves it: its request decoder, its call, its response encoder. */
export interface UnaryRoute {
  decode: (bytes: Buffer) => unknown;
  call: UnaryCall<unknown, unknown>;
  encode: (response: unknown) => Buffer;
}

export interface KeyValueService {
  /** The handlers, for grpc-js. */
  implementation: UntypedServiceImplementation;
  /** The unary methods by path ("/kv.v1.KeyValueService/Get"), each sharing its call (and so its metrics) with the grpc-js handler. */
  unaryRoutes: Map<string, UnaryRoute>;
  /** The streaming methods' credentials steps by path (grpc-js reads their requests; unary calls have UnaryCall.admit). */
  streamGates: Map<string, StreamGate>;
}

/** The service's handlers; `calls` (metrics) gets an observer per method, by its name in the proto ("Get"). */
export function createKeyValueService(deps: GrpcDeps, calls?: CallObserver): KeyValueService {
  const implementation: UntypedServiceImplementation = {};
  const unaryRoutes = new Map<string, UnaryRoute>();
  const streamGates = new Map<string, StreamGate>();
  for (const [method, spec] of Object.entries(KeyValueServiceService)) {
    const observer = calls?.method(spec.path.slice(spec.path.lastIndexOf('/') + 1));
    // The row's decoder makes the request its handler takes (each row of ROWS pairs them by hand).
    const row = ROWS[method as Method];
    const methodDeps = { ...deps, observer };
    if ('unary' in row) {
      const call = unaryCall(row.unary as Handler<unknown, unknown>, methodDeps);
      implementation[method] = unary(call);
      unaryRoutes.set(spec.path, { decode: row.decode, call, encode: row.encode as (response: unknown) => Buffer });
    } else {
      streamGates.set(spec.path, streamGate(methodDeps));
      if ('serverStream' in row)
        implementation[method] = serverStream(row.serverStream as StreamHandler<unknown, unknown>, methodDeps, row.lifetime);
      else implementation[method] = duplexStream(row.duplex as DuplexHandler<unknown, unknown>, methodDeps);
    }
  }
  return { implementation, unaryRoutes, streamGates };
}
