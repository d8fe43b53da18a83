import { InvalidArgumentError } from './service-errors';

/**
 * ListKeys page tokens (AIP-158): opaque to clients, base64url of JSON
 * {v, p, a} — version, the prefix the listing was made for, and the last
 * key returned. Resuming strictly after a key (not at an offset) is what
 * makes paging under concurrent writes neither repeat nor miss keys.
 */
interface PageTokenBody {
  v: 1;
  p: string;
  a: string;
}

export function encodePageToken(prefix: string, lastKey: string): string {
  const body: PageTokenBody = { v: 1, p: prefix, a: lastKey };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** Returns the key to resume after, or throws InvalidArgumentError. */
export function decodePageToken(token: string, prefix: string): string {
  const body = tokenBody(token);
  // A key resumed after must be text a key could be (no lone surrogates from a hand-made token).
  if (!isPageTokenBody(body) || !body.a.isWellFormed()) {
    throw new InvalidArgumentError('page_token is malformed; pass back next_page_token unchanged');
  }
  if (body.p !== prefix) {
    throw new InvalidArgumentError(`page_token was issued for prefix ${JSON.stringify(body.p)}, not ${JSON.stringify(prefix)}`);
  }
  return body.a;
}

function isPageTokenBody(body: unknown): body is PageTokenBody {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return b.v === 1 && typeof b.p === 'string' && typeof b.a === 'string' && b.a.startsWith(b.p);
}

/** ListLeases page tokens: base64url of JSON {v, l}, the last lease id returned (resumed strictly after). */
export function encodeLeasePageToken(lastId: number): string {
  return Buffer.from(JSON.stringify({ v: 1, l: lastId }), 'utf8').toString('base64url');
}

/** Returns the lease id to resume after, or throws InvalidArgumentError. */
export function decodeLeasePageToken(token: string): number {
  const body = tokenBody(token);
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (b.v !== 1 || typeof b.l !== 'number' || !Number.isSafeInteger(b.l) || b.l < 1) {
    throw new InvalidArgumentError('page_token is malformed; pass back next_page_token unchanged');
  }
  return b.l;
}

/** A token's JSON body, or InvalidArgumentError if it is not base64url of JSON. */
function tokenBody(token: string): unknown {
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error('not base64url');
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidArgumentError('page_token is malformed; pass back next_page_token unchanged');
  }
}
