/**
 * The benchmark chart as a self-contained SVG, written by hand so the bench
 * needs no plotting dependency: one panel per workload, in each a group of
 * bars per concurrency with one bar per server (median calls/s, from
 * h2load) and a whisker for the min-max over rounds. The panels share one y
 * scale so workloads compare at a glance too.
 */
import { SERVERS } from './compare';
import type { BenchResults } from './results';
import type { ServerName } from './servers';
import { summarize } from './stats';
import { WORKLOADS, type Workload } from './workloads';

const COLORS: Record<ServerName, string> = { kv: '#2563eb', etcd: '#f59e0b', echo: '#9ca3af' };
const LABELS: Record<ServerName, string> = { kv: 'kv (fsync always)', etcd: 'etcd 3.4', echo: 'grpc-js echo (ceiling)' };

const PANEL_WIDTH_EACH = 435;
const HEIGHT = 460;
const PANEL_TOP = 96;
const PANEL_BOTTOM = HEIGHT - 70;
const AXIS_LEFT = 70;
const PANEL_GAP = 40;

function panelTitle(workload: Workload): string {
  const etcd = workload.calls.etcd?.label;
  return etcd ? `${workload.label} (etcd ${etcd})` : workload.label;
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (value: number): string => Math.round(value).toLocaleString('en-US');

/** A round axis maximum and tick step above `value` (1, 2 or 5 times a power of ten). */
function niceScale(value: number): { max: number; step: number } {
  const rough = Math.max(value, 1) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? 10 * power;
  return { max: Math.ceil(value / step) * step, step };
}

interface Bar {
  median: number;
  min: number;
  max: number;
}

export function renderChart(results: BenchResults): string {
  const { concurrencies, rounds } = results.settings;
  const workloads = WORKLOADS.filter((workload) => results.comparison.some((m) => m.workload === workload.id));
  const WIDTH = AXIS_LEFT + workloads.length * PANEL_WIDTH_EACH + (workloads.length - 1) * PANEL_GAP + 20;
  const PANEL_WIDTH = PANEL_WIDTH_EACH;
  const bars = new Map<string, Bar>();
  let top = 0;
  for (const workload of workloads) {
    for (const concurrency of concurrencies) {
      for (const server of SERVERS) {
        const runs = results.comparison.filter((m) => m.workload === workload.id && m.concurrency === concurrency && m.server === server);
        const summary = summarize(runs.map((m) => m.throughput.okPerSec));
        bars.set(`${workload.id}/${concurrency}/${server}`, summary);
        if (Number.isFinite(summary.max)) top = Math.max(top, summary.max);
      }
    }
  }
  const { max, step } = niceScale(top * 1.08);
  const y = (value: number): number => PANEL_BOTTOM - (value / max) * (PANEL_BOTTOM - PANEL_TOP);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">Throughput, calls/s (higher is better), ${results.settings.valueBytes}-byte JSON values, one connection</text>`,
  );
  out.push(
    `<text x="${WIDTH / 2}" y="44" text-anchor="middle" fill="#4b5563">bar: median of ${rounds} interleaved round${rounds === 1 ? '' : 's'}; whisker: min–max · ${escape(results.machine.cpus + ' cores, ' + results.machine.cpuModel)} · h2load load generator on the same machine</text>`,
  );

  // Y axis, gridlines and tick labels, shared by both panels.
  for (let tick = 0; tick <= max; tick += step) {
    const ty = y(tick);
    out.push(`<line x1="${AXIS_LEFT}" x2="${WIDTH - 20}" y1="${ty}" y2="${ty}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${AXIS_LEFT - 8}" y="${ty + 4}" text-anchor="end" fill="#374151">${fmt(tick)}</text>`);
  }

  workloads.forEach((workload, panel) => {
    const left = AXIS_LEFT + panel * (PANEL_WIDTH + PANEL_GAP);
    out.push(
      `<text x="${left + PANEL_WIDTH / 2}" y="${PANEL_TOP - 16}" text-anchor="middle" font-size="14" font-weight="600">${escape(panelTitle(workload))}</text>`,
    );
    const groupWidth = PANEL_WIDTH / concurrencies.length;
    const barWidth = (groupWidth * 0.8) / SERVERS.length;
    concurrencies.forEach((concurrency, group) => {
      const groupLeft = left + group * groupWidth + groupWidth * 0.1;
      SERVERS.forEach((server, index) => {
        const bar = bars.get(`${workload.id}/${concurrency}/${server}`);
        if (!bar || !Number.isFinite(bar.median)) return;
        const x = groupLeft + index * barWidth;
        const center = x + barWidth / 2;
        out.push(
          `<rect x="${x + 1}" y="${y(bar.median)}" width="${barWidth - 2}" height="${PANEL_BOTTOM - y(bar.median)}" fill="${COLORS[server]}"><title>${escape(`${LABELS[server]}, ${workload.label} c=${concurrency}: median ${fmt(bar.median)}/s (min ${fmt(bar.min)}, max ${fmt(bar.max)})`)}</title></rect>`,
        );
        if (bar.max > bar.min) {
          out.push(
            `<path d="M${center} ${y(bar.max)}V${y(bar.min)}M${center - 4} ${y(bar.max)}H${center + 4}M${center - 4} ${y(bar.min)}H${center + 4}" stroke="#111827" stroke-width="1.2" fill="none"/>`,
          );
        }
        out.push(
          `<text x="${center}" y="${Math.min(y(bar.max), y(bar.median)) - 5}" text-anchor="middle" font-size="10" fill="#111827">${fmt(bar.median)}</text>`,
        );
      });
      out.push(
        `<text x="${left + group * groupWidth + groupWidth / 2}" y="${PANEL_BOTTOM + 18}" text-anchor="middle" fill="#374151">c = ${concurrency}</text>`,
      );
    });
    out.push(`<line x1="${left}" x2="${left + PANEL_WIDTH}" y1="${PANEL_BOTTOM}" y2="${PANEL_BOTTOM}" stroke="#6b7280"/>`);
  });
  out.push(
    `<text x="${WIDTH / 2}" y="${PANEL_BOTTOM + 38}" text-anchor="middle" fill="#374151">concurrent calls in flight (one HTTP/2 connection)</text>`,
  );

  // Legend.
  const legendY = HEIGHT - 16;
  let legendX = WIDTH / 2 - 250;
  for (const server of SERVERS) {
    out.push(`<rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[server]}"/>`);
    out.push(`<text x="${legendX + 18}" y="${legendY}">${escape(LABELS[server])}</text>`);
    legendX += 180;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
