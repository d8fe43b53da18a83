/**
 * What the servers are asked to do. A workload names, for each server that
 * can run it, the gRPC method and the request for one key in protobuf JSON;
 * the same request is encoded to bytes for h2load (one fixed key per run)
 * and listed for ghz (a seeded shuffle of keys). Adding a unary workload is
 * one entry in WORKLOADS (plus its request message in bench/server-apis.ts
 * if kv has not been sent it before).
 *
 * ghz cycles through a fixed list of requests rather than running its
 * per-call {{randomInt}} template: it then encodes every distinct message
 * once, instead of running a template and a JSON->protobuf conversion per
 * call, which on a 2-core machine would take CPU from the server under test.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { JsonObject } from './server-apis';
import type { ServerName } from './servers';

export interface Call {
  /** Fully qualified, e.g. kv.v1.KeyValueService/Set. */
  method: string;
  /** What the report calls it on this server when the workload's own name would mislead, e.g. "Put". */
  label?: string;
  /** The request for `key`, in protobuf JSON. */
  request(key: string): JsonObject;
}

export interface Workload {
  /** Short and stable: results are saved under it. */
  id: string;
  label: string;
  /**
   * Whether each call writes its key once. Then a run is checked by reading
   * the key's version before and after: it must have grown by exactly the
   * number of calls h2load counted as successful.
   */
  writesKey: boolean;
  /** The servers that run it; a server missing here is left out of the workload's rows. */
  calls: Partial<Record<ServerName, Call>>;
  /** Other keys each call touches: they and the key are written once before a run, so compares find them. */
  companionKeys?(key: string): string[];
}

/** The stored value: a small JSON document, exactly 100 bytes as JSON text. */
export const VALUE: { [field: string]: string | number | boolean | string[] } = (() => {
  const value: { [field: string]: string | number | boolean | string[] } = {
    user: 'u-31337',
    active: true,
    score: 12.5,
    tags: ['alpha', 'beta'],
    note: '',
  };
  while (JSON.stringify(value).length < 100) value.note = `${String(value.note)}x`;
  return value;
})();
export const VALUE_BYTES = JSON.stringify(VALUE).length;

export const keyName = (index: number): string => `k${index}`;

export const SET: Workload = {
  id: 'set',
  label: 'Set',
  writesKey: true,
  calls: {
    kv: { method: 'kv.v1.KeyValueService/Set', request: (key) => ({ key, value: VALUE }) },
    // etcd stores bytes: the same JSON text kv stores.
    etcd: { method: 'etcdserverpb.KV/Put', label: 'Put', request: (key) => ({ key, value: JSON.stringify(VALUE) }) },
    echo: { method: 'bench.echo.v1.EchoService/Set', request: (key) => ({ key, value: VALUE }) },
  },
};

export const GET: Workload = {
  id: 'get',
  label: 'Get',
  writesKey: false,
  calls: {
    kv: { method: 'kv.v1.KeyValueService/Get', request: (key) => ({ key }) },
    // Serializable: answered from the member's own state without a raft round trip, the read comparable to kv's Get.
    etcd: { method: 'etcdserverpb.KV/Range', label: 'Range, serializable', request: (key) => ({ key, serializable: true }) },
    echo: { method: 'bench.echo.v1.EchoService/Get', request: (key) => ({ key }) },
  },
};

/** Get as kv's etcd engine reads: etcd's Range linearizable (through raft), as the frontend's Get is. */
export const GET_LINEARIZABLE: Workload = {
  id: 'get-linearizable',
  label: 'Get',
  writesKey: false,
  calls: {
    kv: GET.calls.kv,
    etcd: { method: 'etcdserverpb.KV/Range', label: 'Range, linearizable', request: (key) => ({ key }) },
  },
};

const partnerOf = (key: string): string => `${key}/b`;

/** Two compares (each key exists: version > 0) and two sets, one revision for both writes. */
export const TXN: Workload = {
  id: 'txn',
  label: 'Txn (2 compares, 2 sets)',
  writesKey: true,
  companionKeys: (key) => [partnerOf(key)],
  calls: {
    kv: {
      method: 'kv.v1.KeyValueService/Txn',
      request: (key) => ({
        compare: [key, partnerOf(key)].map((subject) => ({ key: subject, result: 'COMPARE_RESULT_GREATER', version: 0 })),
        success: [key, partnerOf(key)].map((subject) => ({ set: { key: subject, value: VALUE } })),
      }),
    },
    etcd: {
      method: 'etcdserverpb.KV/Txn',
      request: (key) => ({
        // Compare.result GREATER (1), target VERSION (0): enums by number, as protobufjs's verify wants them.
        compare: [key, partnerOf(key)].map((subject) => ({ key: subject, result: 1, target: 0, version: 0 })),
        success: [key, partnerOf(key)].map((subject) => ({ request_put: { key: subject, value: JSON.stringify(VALUE) } })),
      }),
    },
  },
};

/** Long enough that no key expires during a run. */
export const TTL_SET_MS = 600_000;
/** The lease etcd's TTL-set Puts are attached to, granted with this id before the runs (bench/txn.ts). */
export const ETCD_BENCH_LEASE = 0x6b76;

/**
 * A write with a time to live. kv: Set with ttl_ms, the key's own private
 * lease. etcd has no per-key TTL: a Put attached to a lease granted once
 * before the run (the cheapest way to get one in etcd); a lease of its own
 * per key costs a LeaseGrant more (bench/txn.ts measures that separately).
 */
export const TTL_SET: Workload = {
  id: 'ttl-set',
  label: 'TTL-set',
  writesKey: true,
  calls: {
    kv: { method: 'kv.v1.KeyValueService/Set', label: 'Set with ttl_ms', request: (key) => ({ key, value: VALUE, ttlMs: TTL_SET_MS }) },
    etcd: {
      method: 'etcdserverpb.KV/Put',
      label: 'Put with a lease',
      request: (key) => ({ key, value: JSON.stringify(VALUE), lease: ETCD_BENCH_LEASE }),
    },
  },
};

/** The comparison's workloads (Set and Get at every concurrency, against the echo ceiling too). */
export const WORKLOADS: readonly Workload[] = [SET, GET];

export function callOf(workload: Workload, server: ServerName): Call {
  const call = workload.calls[server];
  if (call === undefined) throw new Error(`workload ${workload.id} has no call for ${server}`);
  return call;
}

/** The servers of `servers` that run `workload`, in the order given. */
export const serversFor = (workload: Workload, servers: readonly ServerName[]): ServerName[] =>
  servers.filter((server) => workload.calls[server] !== undefined);

/** Writes the request list ghz will cycle through; returns its path. */
export function writeGhzDataFile(dir: string, server: ServerName, workload: Workload, keys: readonly number[], label: string): string {
  const file = path.join(dir, `${label}-${server}-${workload.id}.json`);
  const call = callOf(workload, server);
  writeFileSync(file, JSON.stringify(keys.map((index) => call.request(keyName(index)))));
  return file;
}

/** mulberry32: a tiny seeded PRNG, so every run sends the same key sequence. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` keys drawn uniformly from [0, keySpace): a permutation when count equals keySpace. */
export function randomKeys(keySpace: number, count: number, seed = 1): number[] {
  const random = seededRandom(seed);
  if (count === keySpace) {
    const keys = Array.from({ length: keySpace }, (_, index) => index);
    for (let index = keys.length - 1; index > 0; index--) {
      const other = Math.floor(random() * (index + 1));
      [keys[index], keys[other]] = [keys[other], keys[index]];
    }
    return keys;
  }
  return Array.from({ length: count }, () => Math.floor(random() * keySpace));
}

export const sequentialKeys = (count: number, from = 0): number[] => Array.from({ length: count }, (_, index) => from + index);
