/**
 * How the bench speaks to each server: the .proto ghz reads, the encoder that
 * turns a request written in protobuf JSON (the form ghz takes) into the
 * bytes h2load posts, and how to read a key's version back (kv Get's
 * entry.version, etcd Range's kvs[0].version) to count the writes that
 * really happened.
 *
 * kv and the echo server take kv's own messages, encoded by the code
 * generated from proto/kv/v1/kv.proto; etcd's are encoded by protobufjs from
 * bench/proto/etcd-rpc.proto, the file ghz reads too.
 */
import path from 'node:path';
import protobuf from 'protobufjs';
import { GetRequest, GetResponse, SetRequest, TxnRequest } from '../src/gen/kv/v1/kv';
import type { ProtoMethod } from './ghz';
import { callOnce, GrpcCallError, grpcFrame, type Endpoint } from './grpc-wire';
import { REPO_ROOT, type ServerName } from './servers';

/** A request or response in protobuf's JSON form. */
export type JsonObject = { [field: string]: unknown };

export interface ServerApi {
  /** Where ghz finds the service: a .proto (relative to the repo) and its import roots. */
  proto: Omit<ProtoMethod, 'call'>;
  /** The protobuf bytes of `request` for `method` (e.g. kv.v1.KeyValueService/Set). */
  encode(method: string, request: JsonObject): Uint8Array;
  /** The key's version (writes since it was created), 0 if absent; undefined for a server that keeps nothing. */
  readVersion?(endpoint: Endpoint, key: string): Promise<number>;
}

/** kv's request messages by method name; the echo server takes the same ones. */
const KV_REQUESTS: Record<string, { fromJSON(object: unknown): unknown; encode(message: never): { finish(): Uint8Array } }> = {
  Set: SetRequest,
  Get: GetRequest,
  Txn: TxnRequest,
};

export function encodeKvRequest(method: string, request: JsonObject): Uint8Array {
  const name = method.slice(method.lastIndexOf('/') + 1);
  const codec = KV_REQUESTS[name];
  if (codec === undefined) throw new Error(`no kv request message for ${method}: add it to KV_REQUESTS in bench/server-apis.ts`);
  return codec.encode(codec.fromJSON(request) as never).finish();
}

let etcdRoot: protobuf.Root | undefined;
/** bench/proto/etcd-rpc.proto, field names as written there (as ghz reads them). */
function etcdProto(): protobuf.Root {
  if (etcdRoot === undefined) {
    etcdRoot = new protobuf.Root().loadSync(path.join(REPO_ROOT, 'bench/proto/etcd-rpc.proto'), { keepCase: true });
    etcdRoot.resolveAll();
  }
  return etcdRoot;
}

/** A message type of etcd-rpc.proto, e.g. WatchResponse. */
export function etcdType(name: string): protobuf.Type {
  return etcdProto().lookupType(`etcdserverpb.${name}`);
}

/** e.g. etcdserverpb.Lease/LeaseGrant. */
function etcdMethod(method: string): protobuf.Method {
  const slash = method.lastIndexOf('/');
  const found = etcdProto().lookupService(method.slice(0, slash)).methods[method.slice(slash + 1)];
  if (found === undefined) throw new Error(`etcd-rpc.proto has no method ${method}`);
  return found;
}

export function encodeEtcdRequest(method: string, request: JsonObject): Uint8Array {
  const type = etcdMethod(method).resolvedRequestType;
  if (type === null) throw new Error(`etcd-rpc.proto: ${method} has no request type`);
  const problem = type.verify(request);
  if (problem !== null) throw new Error(`etcd ${method} request: ${problem}`);
  return type.encode(type.fromObject(request)).finish();
}

export function decodeEtcdResponse(method: string, bytes: Uint8Array): JsonObject {
  const type = etcdMethod(method).resolvedResponseType;
  if (type === null) throw new Error(`etcd-rpc.proto: ${method} has no response type`);
  return type.toObject(type.decode(bytes), { longs: Number, defaults: true });
}

export const SERVER_APIS: Record<ServerName, ServerApi> = {
  kv: {
    proto: { proto: 'proto/kv/v1/kv.proto', importPaths: ['proto'] },
    encode: encodeKvRequest,
    async readVersion(endpoint, key) {
      const method = 'kv.v1.KeyValueService/Get';
      try {
        const response = await callOnce(endpoint, method, grpcFrame(encodeKvRequest(method, { key })));
        return GetResponse.decode(response).entry?.version ?? 0;
      } catch (error) {
        if (error instanceof GrpcCallError && error.status === '5') return 0; // NOT_FOUND
        throw error;
      }
    },
  },
  etcd: {
    proto: { proto: 'bench/proto/etcd-rpc.proto', importPaths: ['bench/proto'] },
    encode: encodeEtcdRequest,
    async readVersion(endpoint, key) {
      // Linearizable (not serializable): the count must include every acknowledged Put.
      const method = 'etcdserverpb.KV/Range';
      const response = decodeEtcdResponse(method, await callOnce(endpoint, method, grpcFrame(encodeEtcdRequest(method, { key }))));
      const kvs = response.kvs as Array<{ version: number }>;
      return kvs[0]?.version ?? 0;
    },
  },
  echo: {
    proto: { proto: 'bench/proto/echo.proto', importPaths: ['proto', 'bench/proto'] },
    encode: encodeKvRequest,
  },
};
