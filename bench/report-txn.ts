/** The transactions and time-to-live section of docs/benchmarks.md, and its chart. */
import type { BarChart } from './bar-chart-svg';
import { cpuPerCall, failures, int, ms, okPerSec, over, p99, pairedByRound, plural, ratio, setupRuns, spread } from './report-format';
import type { BenchResults, ExpiryRun, LeasePerKeyRun } from './results';
import { TXN_WORKLOADS } from './txn';
import type { Workload } from './workloads';

export const TXN_CHART = 'benchmarks-txn.svg';
const SERVERS = ['kv', 'etcd'] as const;
const COLORS = { kv: '#2563eb', etcd: '#f59e0b' } as const;

const labelOf = (workload: Workload, server: 'kv' | 'etcd'): string => {
  const label = workload.calls[server]?.label;
  return label ? `${server} (${label})` : server;
};

export function txnChart(results: BenchResults): BarChart | undefined {
  const txn = results.txn;
  if (!txn) return undefined;
  return {
    title: `Transactions and time to live, calls/s at c=${results.settings.txn.concurrency} (higher is better)`,
    subtitle: `h2load; lease per key: a Node client · median of ${plural(results.settings.rounds, 'round')}, whisker min–max`,
    series: SERVERS.map((server) => ({ id: server, label: server === 'kv' ? 'kv (fsync always)' : 'etcd 3.4', color: COLORS[server] })),
    panels: [
      {
        title: 'calls/s',
        groups: [
          ...TXN_WORKLOADS.map((workload) => ({
            label: workload.id === 'txn' ? 'Txn 2+2' : workload.label,
            values: Object.fromEntries(SERVERS.map((server) => [server, over(setupRuns(txn.runs, server, workload.id), okPerSec)])),
          })),
          {
            label: 'lease per key',
            values: Object.fromEntries(
              SERVERS.map((server) => [
                server,
                over(
                  txn.leasePerKey.filter((run) => run.server === server),
                  (run) => run.keysPerSec,
                ),
              ]),
            ),
          },
        ],
      },
    ],
  };
}

export function txnSection(results: BenchResults): string[] {
  const txn = results.txn;
  if (!txn) return [];
  const { concurrency, expiryKeys, expiryTtlMs, expirySpreadMs } = results.settings.txn;
  const lines = [
    '## Transactions and time to live',
    '',
    `kv and etcd fresh, both up at once, alternating, ${plural(results.settings.rounds, 'round')}; h2load at c=${concurrency} on one key per round, checked like the Set runs above (the key's version must grow by one per call). **Txn**: two compares (each key exists: version > 0) and two sets of the ${results.settings.valueBytes}-byte value, one revision for both; kv's \`Txn\`, etcd's \`Txn\` with the same compares and two Puts. **TTL-set**: kv's Set with \`ttl_ms\` (the key gets a private lease); etcd has no TTL on a key, so its Puts are attached to one lease granted before the runs — the cheapest TTL etcd offers, but every key on it expires together. A TTL of its own per key costs etcd a LeaseGrant before each Put: **lease per key** measures that, from a Node client (one connection, ${concurrency} keys in flight, a new key each time): kv one Set with \`ttl_ms\`, etcd a LeaseGrant and then the Put; its latency is the whole key's (both calls for etcd). Set is the baseline, measured in the same rounds.`,
    '',
    `![Set, Txn, TTL-set and lease per key, kv and etcd](${TXN_CHART})`,
    '',
    '| workload | server | calls/s: median (min–max) | p99 ms (h2load) | server CPU µs/call | failed calls |',
    '|---|---|---|---:|---:|---:|',
  ];
  for (const workload of TXN_WORKLOADS) {
    for (const server of SERVERS) {
      const runs = setupRuns(txn.runs, server, workload.id);
      if (runs.length === 0) continue;
      lines.push(
        `| ${workload.label} | ${labelOf(workload, server)} | ${spread(over(runs, okPerSec), int)} | ${ms(over(runs, p99).median)} | ${int(over(runs, cpuPerCall).median)} | ${failures(runs)} |`,
      );
    }
  }
  const perKey = (server: string): LeasePerKeyRun[] => txn.leasePerKey.filter((run) => run.server === server);
  for (const server of SERVERS) {
    const runs = perKey(server);
    if (runs.length === 0) continue;
    lines.push(
      `| lease per key (Node client) | ${server === 'kv' ? 'kv (Set with ttl_ms)' : 'etcd (LeaseGrant + Put)'} | ${spread(
        over(runs, (run) => run.keysPerSec),
        int,
      )} keys/s | ${ms(over(runs, (run) => run.p99Ms).median)} | ${int(over(runs, (run) => run.serverCpuUsPerKey).median)} per key | ${runs.reduce((sum, run) => sum + run.failed, 0)} |`,
    );
  }
  lines.push(
    '',
    'kv divided by etcd within each round, and each workload against Set on the same server (the cost of a Txn or a TTL in Sets):',
    '',
    '| workload | calls/s kv / etcd | CPU per call kv / etcd | kv: calls/s vs its Set | etcd: calls/s vs its Put |',
    '|---|---|---|---|---|',
  );
  for (const workload of TXN_WORKLOADS) {
    const kv = setupRuns(txn.runs, 'kv', workload.id);
    const etcd = setupRuns(txn.runs, 'etcd', workload.id);
    const vsSet = (server: string): string =>
      workload.id === 'set'
        ? ''
        : spread(pairedByRound(setupRuns(txn.runs, server, workload.id), setupRuns(txn.runs, server, 'set'), okPerSec), ratio);
    lines.push(
      `| ${workload.label} | ${spread(pairedByRound(kv, etcd, okPerSec), ratio)} | ${spread(pairedByRound(kv, etcd, cpuPerCall), ratio)} | ${vsSet('kv')} | ${vsSet('etcd')} |`,
    );
  }
  lines.push(
    `| lease per key | ${spread(
      pairedByRound(perKey('kv'), perKey('etcd'), (run) => run.keysPerSec),
      ratio,
    )} keys/s | ${spread(
      pairedByRound(perKey('kv'), perKey('etcd'), (run) => run.serverCpuUsPerKey),
      ratio,
    )} | | |`,
  );

  const expiry = (server: string): ExpiryRun[] => txn.expiry.filter((run) => run.server === server);
  lines.push(
    '',
    '### Lease expiry: how late a key goes',
    '',
    `${int(expiryKeys)} keys written over ${ms(expirySpreadMs / 1000)} s, each with its own time to live of ${ms(expiryTtlMs / 1000)} s (kv: Set with \`ttl_ms\`; etcd: a LeaseGrant with TTL ${Math.ceil(expiryTtlMs / 1000)} s, etcd's TTLs being whole seconds, then the Put on it), and a watcher on their prefix in the bench process. **Lateness** is the DELETE event's arrival minus the key's deadline, taken as the moment the Set (etcd: the LeaseGrant) was acknowledged plus the time to live; the server started the clock somewhere between the call's send and that acknowledgement, so the true lateness is larger by up to the call's latency (its p50 is given). Both fresh, alternating, ${plural(results.settings.rounds, 'round')}.`,
    '',
    '| server | keys expired | TTL | lateness p50 ms | p99 ms | max ms | Set (etcd: LeaseGrant) p50 ms |',
    '|---|---:|---:|---|---|---|---:|',
  );
  for (const server of SERVERS) {
    const runs = expiry(server);
    if (runs.length === 0) continue;
    const expired = runs.reduce((sum, run) => sum + run.expired, 0);
    const keys = runs.reduce((sum, run) => sum + run.keys, 0);
    lines.push(
      `| ${server} | ${int(expired)} of ${int(keys)} | ${ms(runs[0].ttlMs / 1000)} s | ${spread(
        over(runs, (run) => run.p50Ms),
        ms,
      )} | ${spread(
        over(runs, (run) => run.p99Ms),
        ms,
      )} | ${spread(
        over(runs, (run) => run.maxMs),
        ms,
      )} | ${ms(over(runs, (run) => run.setP50Ms).median)} |`,
    );
  }
  lines.push(
    '',
    "kv arms one timer for its earliest lease deadline and deletes what expired through the commit loop (at most 128 leases a batch, one fdatasync each, the event loop turning between batches), so a key goes about a commit after its deadline. etcd's lessor looks for expired leases every 500 ms and revokes at most 1,000 leases a second, so its keys go up to half a second late, later under a burst.",
    '',
  );
  return lines;
}
