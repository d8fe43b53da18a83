/**
 * The TypeScript side of the chaos run (the Go side is test/chaos/go/cmd/chaos-client,
 * with the same op mix and the same record format): `--clients` concurrent
 * clients, each a KvClient with its own connection, issue Get / Set /
 * compare-and-set / Txn / Delete on a few keys, one call at a time, and record
 * every call as a JSON line in `--out`. Unlike the Go clients, these fail
 * fast while the server is down (the SDK's default), so their history has
 * calls that never reached any server. Prints "ready <clock ns>" once set up;
 * stops when stdin closes: no new calls, the ones in flight are finished and
 * recorded, exit 0.
 *
 * Times are process.hrtime.bigint(): CLOCK_MONOTONIC, the clock the Go
 * clients and the harness read too, so intervals compare across processes.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Compare, KvClient, KvError, Op, type JsonValue } from '@kv/client';

interface ChaosRecord {
  client: string;
  op: 'get' | 'set' | 'delete' | 'txn';
  key: string;
  value?: string;
  expected?: number;
  status?: 'ok' | 'not_found' | 'aborted' | 'indefinite';
  found?: string;
  mod_revision?: number;
  revision?: number;
  deleted?: boolean;
  succeeded?: boolean;
  current_revision?: number;
  error?: string;
}

/** mulberry32: a seeded generator, so a run's op mix can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class ChaosClient {
  private seq = 0;
  /** The last mod_revision this client saw per key (0: absent), for compare-and-set. */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly name: string,
    private readonly kv: KvClient,
    private readonly keys: number,
    private readonly rng: () => number,
    private readonly deadlineMs: number,
    private readonly write: (line: string) => void,
  ) {}

  /** Set by a call that got no answer: only reads until the server answers again. */
  private probing = false;

  /**
   * One call, recorded. The mix matches the Go client's: 40% get, 15% set,
   * 20% compare-and-set, 10% txn (if the key's mod_revision is the one
   * expected, set it, else get it), 15% delete. After a call that got no answer, only
   * gets until one is answered: failing fast, this client would otherwise
   * send a stream of writes while the server is down, each of which may
   * have happened as far as anyone can tell, and each one left open
   * multiplies the checker's work. (A read with no answer tells nothing
   * and is dropped.)
   */
  async one(): Promise<void> {
    const key = `k${Math.floor(this.rng() * this.keys)}`;
    this.seq++;
    const value = `${this.name}:${this.seq}`;
    const p = this.probing ? 0 : this.rng();
    const r: ChaosRecord =
      p < 0.4
        ? { client: this.name, op: 'get', key }
        : p < 0.75
          ? { client: this.name, op: 'set', key, value, expected: p >= 0.55 ? this.expectation(key) : undefined }
          : p < 0.85
            ? { client: this.name, op: 'txn', key, value, expected: this.expectation(key) }
            : { client: this.name, op: 'delete', key, expected: this.rng() < 0.5 ? this.expectation(key) : undefined };
    const options = { deadlineMs: this.deadlineMs, expectedRevision: r.expected };
    const call = process.hrtime.bigint();
    let ret: bigint;
    try {
      if (r.op === 'get') {
        const entry = await this.kv.get(key, { deadlineMs: this.deadlineMs });
        ret = process.hrtime.bigint();
        if (entry === undefined) {
          r.status = 'not_found';
          this.known.set(key, 0);
        } else {
          Object.assign(r, { status: 'ok', found: foundString(entry.value), mod_revision: entry.modRevision });
          this.known.set(key, entry.modRevision);
        }
      } else if (r.op === 'txn') {
        const txn = await this.kv
          .txn({ deadlineMs: this.deadlineMs })
          .if(Compare.modRevision(key, '==', r.expected as number))
          .then(Op.set(key, value))
          .else(Op.get(key))
          .commit();
        ret = process.hrtime.bigint();
        Object.assign(r, { status: 'ok', succeeded: txn.succeeded, revision: txn.revision });
        this.known.set(key, txn.revision);
        const [got] = txn.results;
        if (!txn.succeeded) {
          if (got?.type !== 'get') throw new Error(`${this.name}: txn's failure branch answered ${JSON.stringify(got)}`);
          this.known.set(key, got.entry?.modRevision ?? 0);
          if (got.entry !== undefined) Object.assign(r, { found: foundString(got.entry.value), mod_revision: got.entry.modRevision });
        }
      } else if (r.op === 'set') {
        const revision = await this.kv.set(key, value, options);
        ret = process.hrtime.bigint();
        Object.assign(r, { status: 'ok', revision });
        this.known.set(key, revision);
      } else {
        // The SDK's delete answers only whether the key existed, not the revision.
        const deleted = await this.kv.delete(key, options);
        ret = process.hrtime.bigint();
        Object.assign(r, { status: 'ok', deleted });
        this.known.set(key, 0);
      }
    } catch (error) {
      ret = process.hrtime.bigint();
      if (!(error instanceof KvError)) throw error;
      if (error.reason === 'REVISION_MISMATCH') {
        if (error.currentRevision === undefined)
          throw new Error(`${this.name}: ABORTED without kv-current-revision: ${error.message}`, { cause: error });
        Object.assign(r, { status: 'aborted', current_revision: error.currentRevision });
        this.known.set(key, error.currentRevision);
      } else {
        // UNAVAILABLE, DEADLINE_EXCEEDED...: no answer about whether a write happened.
        Object.assign(r, { status: 'indefinite', error: `${error.reason}: ${error.message}` });
      }
    }
    // JSON numbers cannot carry a bigint; CLOCK_MONOTONIC nanoseconds pass 2^53 after 104 days of uptime.
    this.write(`${JSON.stringify(r).slice(0, -1)},"call":${call},"return":${ret}}\n`);
    this.probing = r.status === 'indefinite';
    if (this.probing) await new Promise((resolve) => setTimeout(resolve, 20)); // do not spin on a server that is down
  }

  /** Usually the revision last seen, sometimes 0 (create only) or one too old, so that compares both win and lose. */
  private expectation(key: string): number {
    const seen = this.known.get(key) ?? 0;
    const p = this.rng();
    if (p < 0.1) return 0;
    if (p < 0.2 && seen > 1) return seen - 1;
    return seen;
  }
}

/** Every value this run writes is a string; anything else is kept as JSON text, which no write produced, so the checker rejects it. */
function foundString(value: JsonValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      addr: { type: 'string' },
      clients: { type: 'string', default: '3' },
      keys: { type: 'string', default: '4' },
      out: { type: 'string' },
      name: { type: 'string', default: 'ts' },
      seed: { type: 'string', default: '1' },
      'deadline-ms': { type: 'string', default: '5000' },
    },
  });
  if (values.addr === undefined || values.out === undefined) throw new Error('--addr and --out are required');
  const out = fs.createWriteStream(values.out);
  const rng = random(Number(values.seed));
  let stopping = false;
  const clients = Array.from({ length: Number(values.clients) }, (_, i) => {
    const kv = new KvClient(values.addr!, {
      // The server comes back within a second or two of each kill: reconnect quickly, never back off for long.
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 20, 'grpc.max_reconnect_backoff_ms': 200 },
    });
    const seed = Math.floor(rng() * 2 ** 32);
    return {
      kv,
      chaos: new ChaosClient(`${values.name}-${i}`, kv, Number(values.keys), random(seed), Number(values['deadline-ms']), (l) =>
        out.write(l),
      ),
    };
  });
  process.stdout.write(`ready ${process.hrtime.bigint()}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => (stopping = true));
  process.stdin.on('close', () => (stopping = true));
  await Promise.all(
    clients.map(async ({ chaos }) => {
      while (!stopping) await chaos.one();
    }),
  );
  for (const { kv } of clients) kv.close();
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`ts-chaos-client: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
