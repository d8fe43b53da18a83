/**
 * Where kv's keys live in etcd: under one byte prefix (--etcd-prefix), each
 * kv key as its UTF-8 bytes. etcd orders keys by bytes, and UTF-8 byte order
 * is Unicode code point order, so etcd's order is kv's order. Every range
 * kv asks for is built here and never reaches outside the prefix, and every
 * key etcd returns has the prefix taken off here, so the namespace never
 * leaks into a listing, a watch or a clear.
 *
 * What etcd returns is checked here against the rules every kv write obeys
 * (key-rules.ts, value-rules.ts), and against what kv's API can carry (a
 * lease id below 2^53): anything else under the prefix was written by
 * another program, and is reported as ForeignDataError (CORRUPT), naming
 * the key, never skipped, rounded or passed on as something kv would send.
 */
import { roundedNumberIn } from '@kv/client/wire';
import type { IKeyValue } from 'etcd3';
import type { StoredEntry } from '../change';
import { ForeignDataError, TooLargeError } from '../errors';
import type { Entry, JsonValue } from '../key-value-store';
import { validateKey } from '../key-rules';
import { encodeValue } from '../value-rules';

// ignoreBOM: a leading U+FEFF is part of the text (a kv key may start with one), not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A stored entry as etcd returned it, checked: its JSON text, revisions and lease, and its value. */
export interface DecodedEntry {
  stored: StoredEntry;
  value: JsonValue;
}

/** A [key, rangeEnd) byte range as etcd takes it (rangeEnd "\0" means "to the end of the keyspace"). */
export interface EtcdRange {
  key: Buffer;
  rangeEnd: Buffer;
}

export class EtcdKeyspace {
  readonly prefix: Buffer;

  constructor(
    prefix: string,
    /** --max-key-bytes: a longer key under the prefix is not one kv accepts. */
    private readonly maxKeyBytes: number,
  ) {
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
   * The kv key of an etcd key from a range this keyspace built. A key kv
   * would refuse (not UTF-8 text, empty, over --max-key-bytes) cannot have
   * come from kv, and no kv call could name it to read or delete it:
   * something else wrote under the prefix, and it is reported, not skipped.
   */
  decodeKey(raw: Buffer): string {
    if (!raw.subarray(0, this.prefix.length).equals(this.prefix)) {
      throw new ForeignDataError(
        `etcd returned key ${showKey(raw)}, which is outside the kv prefix ${JSON.stringify(this.prefix.toString())}`,
      );
    }
    let key: string;
    try {
      key = utf8.decode(raw.subarray(this.prefix.length));
    } catch {
      throw new ForeignDataError(
        `etcd key ${showKey(raw)} under the kv prefix is not UTF-8 text, so kv did not write it; remove it or choose another --etcd-prefix`,
      );
    }
    try {
      validateKey(key, this.maxKeyBytes);
    } catch (error) {
      const larger = error instanceof TooLargeError ? ' (or a frontend with a larger --max-key-bytes did)' : '';
      throw new ForeignDataError(
        `etcd key ${showKey(raw)} under the kv prefix is not a kv key (${(error as Error).message}), so kv did not write it${larger} and no kv call can name it; remove it with etcdctl del, or choose another --etcd-prefix`,
      );
    }
    return key;
  }

  /**
   * A stored value's JSON text and the value, checked: kv only ever stores
   * UTF-8 JSON text (no byte-order mark) that its value rules accept (no
   * infinite number, nested no deeper than clients decode), that holds
   * only Unicode text (no lone surrogate, which a client would get as
   * U+FFFD), and that JSON.parse keeps as written: no object key given
   * twice (only the last value would be kept) and no number a 64-bit float
   * would round. The text returned is the value's own JSON.stringify form.
   * Its size is not checked: a value over this frontend's --max-value-bytes
   * may come from a frontend with a larger limit, and reading it harms
   * nothing.
   */
  decodeValue(raw: Buffer, key: string): { json: string; value: JsonValue } {
    const foreign = (problem: string): ForeignDataError =>
      new ForeignDataError(
        `the value of key ${JSON.stringify(key)} in etcd ${problem}, so kv did not write it; set or delete the key through kv, or choose another --etcd-prefix`,
      );
    let text: string;
    let value: JsonValue;
    try {
      text = utf8.decode(raw);
      value = JSON.parse(text) as JsonValue;
    } catch {
      throw foreign('is not JSON');
    }
    let json: string;
    try {
      ({ json } = encodeValue(key, value, Number.POSITIVE_INFINITY));
    } catch (error) {
      throw foreign(`breaks kv's value rules (${(error as Error).message})`);
    }
    if (hasLoneSurrogate(json)) throw foreign('holds a lone surrogate (\\uD800-\\uDFFF unpaired), which is not Unicode text');
    // What kv writes is its value's JSON.stringify form, which JSON.parse keeps as written: only other text needs the check.
    if (json !== text) {
      const altered = alteredByParse(text);
      if (altered !== undefined) throw foreign(altered);
      // The value of the text served (JSON has no -0: "-0" is served as 0, as kv would have stored it).
      value = JSON.parse(json) as JsonValue;
    }
    return { json, value };
  }

  /**
   * An entry of `key` from a Range, a Txn or a watch event, its value
   * checked as by decodeValue and its lease as one kv can hold: kv grants
   * lease ids below 2^48 (etcd-leases.ts), and its API carries them as
   * numbers exact to 2^53 - 1, so a larger id (one etcd chose, for another
   * client) would reach callers rounded, and be re-attached rounded by an
   * Update that keeps it.
   */
  decodeEntry(kv: IKeyValue, key: string): DecodedEntry {
    const { json, value } = this.decodeValue(kv.value, key);
    const lease = Number(kv.lease);
    if (!Number.isSafeInteger(lease) || lease < 0) {
      throw new ForeignDataError(
        `key ${JSON.stringify(key)} in etcd is attached to etcd lease ${kv.lease}, outside the lease ids kv can represent (up to 2^53 - 1), so kv did not grant that lease; set or delete the key through kv, or choose another --etcd-prefix`,
      );
    }
    return {
      value,
      stored: {
        valueJson: json,
        createRevision: Number(kv.create_revision),
        modRevision: Number(kv.mod_revision),
        version: Number(kv.version),
        lease,
      },
    };
  }
}

/** The entry callers get for `key`. */
export function toEntry(key: string, { stored, value }: DecodedEntry): Entry {
  return {
    key,
    value,
    createRevision: stored.createRevision,
    modRevision: stored.modRevision,
    version: stored.version,
    lease: stored.lease,
  };
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

/** An etcd key for a message: as text (quoted, cut at 64 characters) if it is UTF-8, else as hex (cut at 64 bytes). */
function showKey(raw: Buffer): string {
  try {
    const text = utf8.decode(raw);
    const head = Array.from(text).slice(0, 64).join('');
    return head.length < text.length ? `${JSON.stringify(head).slice(0, -1)}…"` : JSON.stringify(text);
  } catch {
    return `0x${raw.subarray(0, 64).toString('hex')}${raw.length > 64 ? '…' : ''}`;
  }
}

/**
 * Why JSON text that JSON.parse accepted does not parse to what it says, or
 * undefined: a number a 64-bit float would round (roundedNumberIn, as kv's
 * HTTP port checks a request), or an object key given twice (JSON.parse
 * keeps the last value).
 */
function alteredByParse(text: string): string | undefined {
  const rounded = roundedNumberIn(text);
  if (rounded !== undefined) return rounded;
  const twice = keyGivenTwice(text);
  return twice === undefined ? undefined : `has the object key ${JSON.stringify(twice)} twice (only one value per key is kept)`;
}

/**
 * The first object key given twice in one object of `text`, JSON that
 * JSON.parse accepted (so strings are whole and brackets balance): keys
 * compared as decoded, so "a" and "\u0061" are the same key.
 */
function keyGivenTwice(text: string): string | undefined {
  // One entry per open bracket: the keys of an object so far, or null for an array.
  const open: Array<Set<string> | null> = [];
  let atKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = open.at(-1);
      if (atKey && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        atKey = false;
      }
      i = end;
    } else if (c === '{') {
      open.push(new Set());
      atKey = true;
    } else if (c === '[') {
      open.push(null);
      atKey = false;
    } else if (c === '}' || c === ']') {
      open.pop();
      atKey = false;
    } else if (c === ',') {
      atKey = open.at(-1) instanceof Set;
    }
  }
  return undefined;
}

/**
 * Whether JSON text made by JSON.stringify holds a lone surrogate: it writes
 * one, and only one, as a \uD800-\uDFFF escape (paired surrogates stay
 * characters), after an even run of backslashes (an odd run is an escaped
 * backslash followed by the letter u).
 */
function hasLoneSurrogate(json: string): boolean {
  return /(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F]/.test(json);
}
