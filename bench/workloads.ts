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
