/** The etcd engine section of docs/benchmarks.md, and its chart. */
import type { BarChart } from './bar-chart-svg';
import { ENGINE_SETUPS, ENGINE_WORKLOADS, type EngineSetup } from './etcd-engine';
import { cpuPerCall, failures, int, ms, okPerSec, over, p99, pairedByRound, plural, ratio, setupRuns, spread } from './report-format';
import type { BenchResults, SetupRun } from './results';

export const ENGINE_CHART = 'benchmarks-engine.svg';
const LABELS: Record<EngineSetup, string> = {
  etcd: 'etcd directly (anchor)',
  'kv-etcd-1': 'kv, 1 frontend over etcd',
  'kv-etcd-2': 'kv, 2 frontends over etcd',
  'kv-file': 'kv, file engine',
};
const COLORS: Record<EngineSetup, string> = { etcd: '#f59e0b', 'kv-etcd-1': '#60a5fa', 'kv-etcd-2': '#1d4ed8', 'kv-file': '#9ca3af' };

const etcdCpu = (run: SetupRun): number => run.throughput.otherCpuUsPerCall?.etcd ?? Number.NaN;

export function engineChart(results: BenchResults): BarChart | undefined {
  const runs = results.engine;
  if (!runs) return undefined;
  return {
    title: `The etcd engine: calls/s at c=${results.settings.engineConcurrency} (higher is better)`,
    subtitle: `3-member etcd 3.4 on loopback · h2load · median of ${plural(results.settings.rounds, 'round')}, whisker min–max · ${results.machine.cpus} shared cores`,
    series: ENGINE_SETUPS.map((setup) => ({ id: setup, label: LABELS[setup], color: COLORS[setup] })),
    panels: ENGINE_WORKLOADS.map((workload) => ({
      title: workload.id === 'set' ? 'Set (etcd: Put)' : 'Get (etcd: linearizable Range)',
      groups: [
        {
          label: `c=${results.settings.engineConcurrency}`,
          values: Object.fromEntries(ENGINE_SETUPS.map((setup) => [setup, over(setupRuns(runs, setup, workload.id), okPerSec)])),
        },
      ],
    })),
  };
}

export function engineSection(results: BenchResults): string[] {
  const runs = results.engine;
  if (!runs) return [];
  const c = results.settings.engineConcurrency;
  const [set, get] = ENGINE_WORKLOADS;
  const lines = [
    '## The etcd engine',
    '',
    `kv's \`--engine etcd\` on a 3-member etcd cluster on loopback (Debian's etcd 3.4, default settings, started by the tests' cluster helper), side by side in one run: **etcd directly** (Put, and Range *linearizable*, as the frontend's Get is, on one connection to member 0: the anchor); **one kv frontend** over the cluster; **two frontends**, the calls and the ${c} in flight split between them (one h2load each, at once); and **the file engine** (fsync always) for scale. Set and Get at c=${c} with h2load, the order rotated each round (${plural(results.settings.rounds, 'round')}); Set runs checked by the key's version as everywhere. Frontend CPU is the kv processes' (both, for two), etcd CPU is the three members' together; both per successful call. Everything shares the ${results.machine.cpus} cores: the three members, the frontends and h2load.`,
    '',
    `![The etcd engine: Set and Get calls/s](${ENGINE_CHART})`,
    '',
    '| setup | Set calls/s: median (min–max) | Set p99 ms | Get calls/s: median (min–max) | Get p99 ms | Set vs etcd | Get vs etcd | frontend CPU µs/call, Set / Get | etcd CPU µs/call, Set / Get | failed calls |',
    '|---|---|---:|---|---:|---|---|---|---|---:|',
  ];
  for (const setup of ENGINE_SETUPS) {
    const s = setupRuns(runs, setup, set.id);
    const g = setupRuns(runs, setup, get.id);
    const vsEtcd = (workload: string): string =>
      setup === 'etcd' ? '1' : spread(pairedByRound(setupRuns(runs, setup, workload), setupRuns(runs, 'etcd', workload), okPerSec), ratio);
    const frontendCpu = setup === 'etcd' ? '–' : `${int(over(s, cpuPerCall).median)} / ${int(over(g, cpuPerCall).median)}`;
    const clusterCpu = setup === 'kv-file' ? '–' : `${int(over(s, etcdCpu).median)} / ${int(over(g, etcdCpu).median)}`;
    lines.push(
      `| ${LABELS[setup]} | ${spread(over(s, okPerSec), int)} | ${ms(over(s, p99).median)} | ${spread(over(g, okPerSec), int)} | ${ms(over(g, p99).median)} | ${vsEtcd(set.id)} | ${vsEtcd(get.id)} | ${frontendCpu} | ${clusterCpu} | ${failures([...s, ...g])} |`,
    );
  }
  const wallUs = (workload: string): string => {
    const one = over(setupRuns(runs, 'kv-etcd-1', workload), okPerSec).median;
    const anchor = over(setupRuns(runs, 'etcd', workload), okPerSec).median;
    return int(1e6 / one - 1e6 / anchor);
  };
  const cpu = (setup: EngineSetup, workload: string, metric: (run: SetupRun) => number): number =>
    over(setupRuns(runs, setup, workload), metric).median;
  const extraEtcd = (workload: string): string => int(cpu('kv-etcd-1', workload, etcdCpu) - cpu('etcd', workload, etcdCpu));
  lines.push(
    '',
    `**What a frontend costs per call.** At c=${c} a call through one frontend takes about ${wallUs(set.id)} µs (Set) and ${wallUs(get.id)} µs (Get) more wall time than the same call sent to etcd itself (the difference of 1/throughput). In CPU, each call costs the frontend ${int(cpu('kv-etcd-1', set.id, cpuPerCall))} µs (Set) and ${int(cpu('kv-etcd-1', get.id, cpuPerCall))} µs (Get) — decoding the kv request and its \`google.protobuf.Value\`, validating and JSON-encoding the value, the etcd call through the etcd3 client (its pool, circuit breaker and reflection-based codec), decoding etcd's answer and encoding kv's — and the etcd members ${extraEtcd(set.id)} µs (Set) and ${extraEtcd(get.id)} µs (Get) more than when the anchor's own calls reach them (etcd's CPU per call of each row above: the frontend's calls arrive on its pool's connections, spread over the members, and each one that lands on a follower is forwarded to the leader). On ${results.machine.cpus} shared cores every microsecond a frontend spends is taken from etcd too, which is why a second frontend on the same machine does not add throughput.`,
    '',
    "**What would scale it.** (1) Frontends on machines of their own: they are stateless, so their throughput adds up until etcd's leader saturates (at the anchor's calls/s above). (2) Several Node processes per frontend machine (`--workers`, when it lands), since one frontend is one busy thread. (3) Less work per call: a hand-written etcd codec instead of proto-loader's reflection, the value's JSON bytes passed through instead of Value → JSON → bytes, and one connection per frontend to the leader for writes. (4) For reads that may be slightly stale, serializable Ranges answered by any member (kv's Get is linearizable today). An earlier profile of a frontend taking Sets (docs/scaling.md) found it 81% busy, grpc-js (client to etcd and server to clients) 20% of its samples, Node's HTTP/2 and event plumbing about 18%, etcd3's pool and breaker about 7%, GC 6% and kv's own code under 5%: the cost is the second gRPC hop, not kv's logic.",
    '',
  );
  return lines;
}
