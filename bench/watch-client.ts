/**
 * The watchers of the watch benchmark, in a process of their own so that
 * their work does not stall the writer: N watch streams on prefixes
 * PREFIX0/ ... PREFIX(N-1)/, spread over connections of at most
 * --per-connection streams each. Every event whose value carries `sentUs`
 * (the writer's send time, bench/watch-streams.ts monotonicUs) gives one
 * write-to-event latency sample.
 *
 * Usage: node --import tsx bench/watch-client.ts --api kv|etcd --address HOST:PORT --prefix P --watchers N
 *        [--start-revision R] [--per-connection 250]
 * It prints {"open":N} once every stream is requested, then answers on
 * stdout, one JSON line each, the commands it reads on stdin:
 *   reset            forget the events so far          -> {"reset":true}
 *   wait COUNT MS    until COUNT events since the reset -> the statistics (timedOut if MS passed first)
 * A watch stream that ends is an error: it prints {"error":...} and exits 1.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { GrpcConnection } from './grpc-wire';
import { quantile } from './stats';
import { monotonicUs, openWatch, type WatchApi, type WatchEvent } from './watch-streams';

export interface WatchClientStats {
  events: number;
  /** Events that carried a send time. */
  samples: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Monotonic µs of the first and last event since the reset. */
  firstUs: number;
  lastUs: number;
  timedOut: boolean;
}

const { values } = parseArgs({
  options: {
    api: { type: 'string' },
    address: { type: 'string' },
    prefix: { type: 'string', default: 'w/' },
    watchers: { type: 'string' },
    'per-connection': { type: 'string', default: '250' },
    'start-revision': { type: 'string', default: '0' },
  },
});
const api = values.api as WatchApi;
const watchers = Number(values.watchers);
const perConnection = Number(values['per-connection']);
if ((api !== 'kv' && api !== 'etcd') || !values.address || !Number.isInteger(watchers) || watchers < 1) {
  process.stderr.write('usage: watch-client.ts --api kv|etcd --address HOST:PORT --prefix P --watchers N\n');
  process.exit(2);
}

const print = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

let latencies: number[] = [];
let events = 0;
let firstUs = 0;
let lastUs = 0;
let waiting: { count: number; timer: NodeJS.Timeout } | undefined;

function stats(timedOut: boolean): WatchClientStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    events,
    samples: sorted.length,
    p50Us: quantile(sorted, 0.5),
    p99Us: quantile(sorted, 0.99),
    maxUs: sorted[sorted.length - 1] ?? Number.NaN,
    firstUs,
    lastUs,
    timedOut,
  };
}

function answerWait(timedOut: boolean): void {
  if (waiting === undefined) return;
  clearTimeout(waiting.timer);
  waiting = undefined;
  print(stats(timedOut));
}

function onEvents(batch: WatchEvent[]): void {
  const now = monotonicUs();
  if (events === 0) firstUs = now;
  lastUs = now;
  events += batch.length;
  for (const event of batch) {
    const sent = (event.value as { sentUs?: unknown } | undefined)?.sentUs;
    if (typeof sent === 'number') latencies.push(now - sent);
  }
  if (waiting !== undefined && events >= waiting.count) answerWait(false);
}

const connections: GrpcConnection[] = [];
for (let index = 0; index < watchers; index++) {
  if (index % perConnection === 0) connections.push(new GrpcConnection({ address: values.address }));
  openWatch(
    connections[connections.length - 1],
    api,
    `${values.prefix}${index}/`,
    {
      onEvents,
      onEnd(reason) {
        print({ error: `watch ${values.prefix}${index}/ ended: ${reason}` });
        process.exit(1);
      },
    },
    Number(values['start-revision']),
  );
}
print({ open: watchers, connections: connections.length });

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, ...args] = line.trim().split(/\s+/);
  if (command === 'reset') {
    latencies = [];
    events = 0;
    firstUs = 0;
    lastUs = 0;
    print({ reset: true });
  } else if (command === 'wait') {
    const count = Number(args[0]);
    waiting = { count, timer: setTimeout(() => answerWait(true), Number(args[1])) };
    if (events >= count) answerWait(false);
  }
});
// The bench closes stdin (or is gone): stop.
process.stdin.on('end', () => process.exit(0));
