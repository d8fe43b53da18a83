/**
 * Where kv's keys live in etcd: under one byte prefix (--etcd-prefix), each
 * kv key as its UTF-8 bytes. etcd orders keys by bytes, and UTF-8 byte order
 * is Unicode code point order, so etcd's order is kv's order. Every range
 * kv asks for is built here and never reaches outside the prefix, and every
 * key etcd returns has the prefix taken off here, so the namespace never
 * leaks into a listing, a watch or a clear.
 */
import { ForeignDataError } from '../errors';
import type { JsonValue } from '../key-value-store';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A [key, rangeEnd) byte range as etcd takes it (rangeEnd "\0" means "to the end of the keyspace"). */
export interface EtcdRange {
  key: Buffer;
  rangeEnd: Buffer;
}

export class EtcdKeyspace {
  readonly prefix: Buffer;

  constructor(prefix: string) {
    this.prefix = Buffer.from(prefix, 'utf8');
  }

  /** The etcd key of a kv key. */
  key(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  /** Every etcd key of a kv key under `prefix` ('' = every kv key). */
  prefixRange(prefix: string): EtcdRange {
    const key = this.key(prefix);
    return { key: key.length === 0 ? Buffer.from([0]) : key, rangeEnd: prefixEnd(key) };
  }

  /**
   * The kv key of an etcd key from a range this keyspace built. A key that
   * is not UTF-8 cannot have come from kv (kv keys are text): something
   * else wrote under the prefix, and it is reported, not skipped.
   */
  decodeKey(raw: Buffer): string {
    if (!raw.subarray(0, this.prefix.length).equals(this.prefix)) {
      throw new ForeignDataError(`etcd returned key ${hex(raw)}, which is outside the kv prefix ${JSON.stringify(this.prefix.toString())}`);
    }
    try {
      return utf8.decode(raw.subarray(this.prefix.length));
    } catch {
      throw new ForeignDataError(
        `etcd key ${hex(raw)} under the kv prefix is not UTF-8 text, so kv did not write it; remove it or choose another --etcd-prefix`,
      );
    }
  }

  /** A stored value's JSON text and the value, checked: kv only ever stores JSON. */
  decodeValue(raw: Buffer, key: string): { json: string; value: JsonValue } {
    try {
      const json = utf8.decode(raw);
      return { json, value: JSON.parse(json) as JsonValue };
    } catch {
      throw new ForeignDataError(
        `the value of key ${JSON.stringify(key)} in etcd is not JSON, so kv did not write it; remove it or choose another --etcd-prefix`,
      );
    }
  }
}

/**
 * The first key after every key starting with `bytes` (etcd's prefix range
 * end): the last byte below 0xff incremented, what follows dropped. Only
 * "\0" (the end of the keyspace) follows a prefix of all 0xff or nothing.
 */
export function prefixEnd(bytes: Buffer): Buffer {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** The key strictly after `key` in byte order. */
export function keyAfter(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

function hex(raw: Buffer): string {
  return `0x${raw.subarray(0, 64).toString('hex')}${raw.length > 64 ? '…' : ''}`;
}
