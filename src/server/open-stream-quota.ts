/**
 * The streams anyone may open without credentials, health Watch and
 * reflection, counted per connection. Each stays open as long as its client
 * wants and holds its call's memory, so without a cap one client could hold
 * --max-concurrent-streams of them on each of its connections. A client
 * needs one of each per connection (grpc-js's health checking opens one
 * Watch per connection; grpcurl one reflection stream); a proxy that
 * carries many clients' calls on one connection needs a higher cap.
 */
import { status, type StatusObject } from '@grpc/grpc-js';

/** Health Watch and reflection streams open at once on one connection, by default (--max-health-streams-per-connection). */
export const OPEN_STREAMS_PER_CONNECTION = 16;

export class OpenStreamQuota {
  private readonly open = new Map<string, number>();
  private readonly limit: number;

  /** `limit` 0: no cap. */
  constructor(limit = OPEN_STREAMS_PER_CONNECTION) {
    this.limit = limit === 0 ? Number.POSITIVE_INFINITY : limit;
  }

  /**
   * Takes a place for a stream of the connection `peer` (grpc-js's
   * call.getPeer(): the client's address and port, one per connection).
   * Returns the place's release (once only), or the status to end the call
   * with if the connection has no place left.
   */
  take(peer: string, what: string): (() => void) | Partial<StatusObject> {
    const count = this.open.get(peer) ?? 0;
    if (count >= this.limit) {
      return {
        code: status.RESOURCE_EXHAUSTED,
        details: `${this.limit} health Watch and reflection streams are open on this connection already, the most one connection may hold (--max-health-streams-per-connection): end one before opening another ${what}`,
      };
    }
    this.open.set(peer, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(peer) ?? 1) - 1;
      if (left === 0) this.open.delete(peer);
      else this.open.set(peer, left);
    };
  }
}
