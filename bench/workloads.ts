/**
 * What each server is asked to do: the gRPC method for a Set or a Get on kv,
 * etcd and the echo server, and the request messages ghz sends, written as
 * JSON arrays ghz cycles through.
 *
 * The keys are a seeded shuffle rather than ghz's per-call {{randomInt}}
 * template: ghz then encodes every distinct message once and reuses it,
 * instead of running a template and a JSON->protobuf conversion per call,
 * which on a 2-core machine would take CPU from the server under test.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProtoMethod } from './ghz';

export type ServerName = 'kv' | 'etcd' | 'echo';
export type Operation = 'set' | 'get';

export const SERVERS: readonly ServerName[] = ['kv', 'etcd', 'echo'];
export const OPERATIONS: readonly Operation[] = ['set', 'get'];

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

const KV: Omit<ProtoMethod, 'call'> = { proto: 'proto/kv/v1/kv.proto', importPaths: ['proto'] };
const ECHO: Omit<ProtoMethod, 'call'> = { proto: 'bench/proto/echo.proto', importPaths: ['proto', 'bench/proto'] };
const ETCD: Omit<ProtoMethod, 'call'> = { proto: 'bench/proto/etcd-kv.proto', importPaths: ['bench/proto'] };

export function methodFor(server: ServerName, operation: Operation): ProtoMethod {
  switch (server) {
    case 'kv':
      return { ...KV, call: `kv.v1.KeyValueService/${operation === 'set' ? 'Set' : 'Get'}` };
    case 'echo':
      return { ...ECHO, call: `bench.echo.v1.EchoService/${operation === 'set' ? 'Set' : 'Get'}` };
    case 'etcd':
      return { ...ETCD, call: `etcdserverpb.KV/${operation === 'set' ? 'Put' : 'Range'}` };
  }
}

type Message = Record<string, string | boolean | typeof VALUE>;

function messageFor(server: ServerName, operation: Operation, key: string): Message {
  if (server === 'etcd') {
    return operation === 'set' ? { key, value: JSON.stringify(VALUE) } : { key, serializable: true };
  }
  // kv and echo take the very same kv.v1 request messages.
  return operation === 'set' ? { key, value: VALUE } : { key };
}

/** Writes the request list ghz will cycle through; returns its path. */
export function writeDataFile(dir: string, server: ServerName, operation: Operation, keys: readonly number[], label: string): string {
  const file = path.join(dir, `${label}-${server}-${operation}.json`);
  writeFileSync(file, JSON.stringify(keys.map((index) => messageFor(server, operation, keyName(index)))));
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
