/**
 * Brute-force brake: each client address may fail authentication `perMinute`
 * times a minute (a token bucket refilled continuously); past that, its
 * credentials are not even checked until the budget refills. IPv6 clients
 * are counted per /64, since one host usually has a whole /64 to hop
 * around in. The table is bounded: the least recently failing addresses
 * are forgotten first.
 */
import { isIPv4 } from 'node:net';

interface Bucket {
  /** Failures still allowed, fractional while refilling. */
  left: number;
  at: number;
}

export class FailureLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = 100_000,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** How long until a call from `peer` may be authenticated again; 0 if now. */
  retryAfterMs(peer: string): number {
    const bucket = this.refilled(clientKey(peer));
    return bucket === undefined || bucket.left >= 1 ? 0 : Math.ceil((1 - bucket.left) / this.perMs);
  }

  recordFailure(peer: string): void {
    const key = clientKey(peer);
    const bucket = this.refilled(key) ?? { left: this.perMinute, at: this.now() };
    bucket.left = Math.max(0, bucket.left - 1);
    // Re-inserting keeps the map in least-recently-failed order for eviction.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value as string);
  }

  private refilled(key: string): Bucket | undefined {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return undefined;
    const now = this.now();
    bucket.left = Math.min(this.perMinute, bucket.left + (now - bucket.at) * this.perMs);
    bucket.at = now;
    if (bucket.left >= this.perMinute) {
      this.buckets.delete(key);
      return undefined;
    }
    return bucket;
  }
}

/** "10.0.0.7:5123" -> "10.0.0.7"; "[2001:db8:1:2:3::4]:5123" -> "2001:db8:1:2::/64"; IPv4-mapped IPv6 counts as IPv4. */
export function clientKey(peer: string): string {
  const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':'));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped) return mapped[1];
  if (isIPv4(host) || !host.includes(':')) return host;
  const [head, tail = ''] = host.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const groups = [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
