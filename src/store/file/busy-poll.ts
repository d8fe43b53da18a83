/**
 * Busy polling around a batch's fdatasync (fsync=always): for a short while
 * the event loop keeps polling for I/O instead of sleeping in epoll_wait.
 *
 * A lone writer's Set is mostly waiting: on the fdatasync (on libuv's thread
 * pool), then on the client's next request. Each wait that puts the process
 * to sleep ends in a wake-up that costs tens of microseconds on a virtual
 * machine, and more after a longer idle spell. Polling through the fdatasync
 * and for a moment after the batch is answered keeps the loop awake for the
 * completion and for the next request. Go's scheduler does the same: an idle
 * thread spins briefly before it parks, part of why etcd answers one writer
 * fast. Measured in docs/benchmarks-set-path.md: Set at c=1 about 1.4x the
 * calls/s for about a quarter more CPU per call; no change at c=64, where
 * the loop is never idle.
 *
 * The cost is CPU: each batch may keep a core busy for up to twice the
 * window (during the fdatasync, then after). 0 turns it off.
 */
export class BusyPoll {
  private until = 0;
  private polling = false;

  constructor(private readonly windowMs: number) {}

  /** Keeps the event loop polling until `windowMs` from now (or later, if it already is). */
  hold(): void {
    const until = performance.now() + this.windowMs;
    if (until > this.until) this.until = until;
    if (!this.polling) {
      this.polling = true;
      setImmediate(this.poll);
    }
  }

  // A pending setImmediate makes libuv poll with a zero timeout: each turn checks for I/O without sleeping.
  private readonly poll = (): void => {
    if (performance.now() < this.until) setImmediate(this.poll);
    else this.polling = false;
  };
}
