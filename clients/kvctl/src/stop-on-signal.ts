/**
 * SIGINT (Ctrl-C) and SIGTERM while a command has something to finish or
 * undo (import, backup, restore) or to close (watch, lease keepalive):
 * however it stops, kvctl then ends by the signal, as the exit code table
 * says (a shell reports 130 for SIGINT, 143 for SIGTERM), so a script
 * running it stops too.
 */
import { constants } from 'node:os';

/** What a command throws once a signal stopped it; the message says how far it got. */
export class Interrupted extends Error {
  constructor(
    readonly signal: NodeJS.Signals,
    message = `interrupted (${signal})`,
  ) {
    super(message);
    this.name = 'Interrupted';
  }
}

/**
 * Listens for SIGINT and SIGTERM from construction until close(). The
 * first is noted: the command sees it at its next step (check() throws
 * Interrupted) or awaits it (`signalled`: say, to close a stream), cleans
 * up and calls dieOf(); a second ends kvctl at once, whatever is left.
 */
export class StopOnSignal {
  signal: NodeJS.Signals | undefined;
  /** Resolves with the first signal. */
  readonly signalled: Promise<NodeJS.Signals>;
  private readonly listener: (signal: NodeJS.Signals) => void;

  constructor() {
    let resolve: (signal: NodeJS.Signals) => void = () => undefined;
    this.signalled = new Promise((settle) => (resolve = settle));
    this.listener = (signal) => {
      if (this.signal !== undefined) this.dieOf(signal);
      this.signal = signal;
      resolve(signal);
    };
    process.on('SIGINT', this.listener);
    process.on('SIGTERM', this.listener);
  }

  /**
   * The signal that came, if any, once the event loop has turned: one that
   * arrived during the command's last synchronous step (a backup's read-back,
   * a restore's rename) is delivered only then, and must not be lost by
   * closing before it is.
   */
  async lastSignal(): Promise<NodeJS.Signals | undefined> {
    // A few milliseconds, not one turn: a signal can take more than one turn of the loop to reach its listeners.
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    return this.signal;
  }

  /** Throws Interrupted if a signal came. */
  check(): void {
    if (this.signal !== undefined) throw new Interrupted(this.signal);
  }

  close(): void {
    process.off('SIGINT', this.listener);
    process.off('SIGTERM', this.listener);
  }

  /** Ends kvctl by the signal (its default action, with no listener left), or as a shell would report it. */
  dieOf(signal: NodeJS.Signals): never {
    this.close();
    process.kill(process.pid, signal);
    process.exit(128 + constants.signals[signal]);
  }
}
