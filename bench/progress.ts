/** Progress lines on stderr, so a 15-minute run says where it is and how long is left. */
const started = performance.now();

export function elapsedSec(): number {
  return (performance.now() - started) / 1000;
}

const clock = (): string => {
  const seconds = Math.round(elapsedSec());
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
};

export function log(message: string): void {
  process.stderr.write(`[${clock()}] ${message}\n`);
}

/** Counts timed runs against a known total and estimates what is left. */
export class RunCounter {
  private done = 0;
  private readonly since = performance.now();
  constructor(
    private readonly total: number,
    private readonly label: string,
  ) {}

  step(message: string): void {
    this.done++;
    const perRun = (performance.now() - this.since) / 1000 / this.done;
    const left = Math.round(perRun * (this.total - this.done));
    log(`${this.label} ${this.done}/${this.total} ${message} (~${left}s left in ${this.label})`);
  }
}
