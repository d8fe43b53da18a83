/** The TLS section of docs/benchmarks.md, and its chart. */
import type { BarChart } from './bar-chart-svg';
import { cpuPerCall, failures, int, ms, okPerSec, over, p99, pairedByRound, plural, ratio, setupRuns, spread } from './report-format';
import type { BenchResults } from './results';
import { TLS_SETUPS, TLS_WORKLOADS, type TlsSetup } from './tls';

export const TLS_CHART = 'benchmarks-tls.svg';
const LABELS: Record<TlsSetup, string> = {
  kv: 'kv, plaintext, no auth',
  'kv-tls': 'kv, TLS + bearer token',
  etcd: 'etcd, plaintext',
  'etcd-tls': 'etcd, TLS',
};
const COLORS: Record<TlsSetup, string> = { kv: '#93c5fd', 'kv-tls': '#1d4ed8', etcd: '#fcd34d', 'etcd-tls': '#d97706' };

export function tlsChart(results: BenchResults): BarChart | undefined {
  const runs = results.tls;
  if (!runs) return undefined;
  return {
    title: `TLS: calls/s at c=${results.settings.tlsConcurrency} (higher is better)`,
    subtitle: `h2load, one connection · median of ${plural(results.settings.rounds, 'round')}, whisker min–max · ${results.machine.cpus} shared cores`,
    series: TLS_SETUPS.map((setup) => ({ id: setup, label: LABELS[setup], color: COLORS[setup] })),
    panels: TLS_WORKLOADS.map((workload) => ({
      title: workload.id === 'get' ? 'Get (etcd: serializable Range)' : 'Set (etcd: Put)',
      groups: [
        {
          label: `c=${results.settings.tlsConcurrency}`,
          values: Object.fromEntries(TLS_SETUPS.map((setup) => [setup, over(setupRuns(runs, setup, workload.id), okPerSec)])),
        },
      ],
    })),
  };
}

export function tlsSection(results: BenchResults): string[] {
  const runs = results.tls;
  if (!runs) return [];
  const c = results.settings.tlsConcurrency;
  const lines = [
    '## TLS',
    '',
    `Four servers up at once, fresh, the order rotated each round (${plural(results.settings.rounds, 'round')}): kv in plaintext without auth; kv with \`--tls-cert/--tls-key\` and \`--auth-file\`, every call carrying \`authorization: Bearer <token>\` (a token made by \`kv-server token create\`, checked on each call); etcd in plaintext; etcd with \`--cert-file/--key-file\`. One P-256 server certificate for 127.0.0.1 from a throwaway CA, made with the openssl lines of [security.md](security.md). h2load at c=${c} on one connection speaks TLS with ALPN h2 to the TLS servers (it does not verify certificates; the bench's own check calls do); Set runs check the key's version as above, over the same TLS connection settings and token. etcd's Get here is the serializable Range, as in the comparison.`,
    '',
    `![Set and Get over TLS vs plaintext, kv and etcd](${TLS_CHART})`,
    '',
    '| workload | setup | calls/s: median (min–max) | p50 ms | p99 ms | server CPU µs/call | failed calls |',
    '|---|---|---|---:|---:|---:|---:|',
  ];
  for (const workload of TLS_WORKLOADS) {
    for (const setup of TLS_SETUPS) {
      const these = setupRuns(runs, setup, workload.id);
      if (these.length === 0) continue;
      lines.push(
        `| ${workload.label} | ${LABELS[setup]} | ${spread(over(these, okPerSec), int)} | ${ms(over(these, (run) => run.throughput.p50Ms).median)} | ${ms(over(these, p99).median)} | ${int(over(these, cpuPerCall).median)} | ${failures(these)} |`,
      );
    }
  }
  const pair = (a: TlsSetup, b: TlsSetup, workload: string, metric = okPerSec): string =>
    spread(pairedByRound(setupRuns(runs, a, workload), setupRuns(runs, b, workload), metric), ratio);
  lines.push(
    '',
    'Ratios within each round (median, range over rounds):',
    '',
    '| workload | kv TLS + token / kv plaintext | etcd TLS / etcd plaintext | kv TLS + token / etcd TLS | kv / etcd, both plaintext | CPU per call: kv TLS / plaintext | CPU per call: etcd TLS / plaintext |',
    '|---|---|---|---|---|---|---|',
  );
  for (const workload of TLS_WORKLOADS) {
    lines.push(
      `| ${workload.label} | ${pair('kv-tls', 'kv', workload.id)} | ${pair('etcd-tls', 'etcd', workload.id)} | ${pair('kv-tls', 'etcd-tls', workload.id)} | ${pair('kv', 'etcd', workload.id)} | ${pair('kv-tls', 'kv', workload.id, cpuPerCall)} | ${pair('etcd-tls', 'etcd', workload.id, cpuPerCall)} |`,
    );
  }
  lines.push(
    '',
    'With one long-lived connection the handshake is paid once; what TLS adds per call is record encryption and decryption on both sides, and for kv the token check (a SHA-256 of the token and a constant-time comparison per auth-file entry) and the authorization of the key.',
    '',
  );
  return lines;
}
