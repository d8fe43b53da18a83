/**
 * Bearer tokens: 256 random bits, shown once when minted; the server keeps
 * only their SHA-256. A fast hash is enough here (unlike for passwords):
 * nobody can guess through 2^256 candidates, however cheap each is.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenEntry } from './auth-config';

/** Lets secret scanners (and people) recognise a kv token. */
const TOKEN_PREFIX = 'kv_';

export function mintToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The entry whose hash is the token's. Compares with every entry, each in
 * constant time, and never stops early: how long it takes says nothing
 * about which entry, or how much of a hash, matched.
 */
export function findToken(tokens: readonly TokenEntry[], token: string): TokenEntry | undefined {
  const hash = hashToken(token);
  let found: TokenEntry | undefined;
  for (const entry of tokens) {
    if (timingSafeEqual(entry.sha256, hash) && found === undefined) found = entry;
  }
  return found;
}
