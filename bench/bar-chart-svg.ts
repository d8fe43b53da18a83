/**
 * A grouped bar chart as a self-contained SVG, for the report's smaller
 * charts (watch, transactions, TLS, the etcd engine): panels side by side,
 * each with its own y scale and unit, a group of bars per label, one bar per
 * series (the median over rounds) with a whisker for the min-max.
 */
import type { Summary } from './stats';

export interface BarSeries {
  id: string;
  label: string;
  color: string;
}

export interface BarGroup {
  label: string;
  /** By series id; a series missing here has no bar in this group. */
  values: Partial<Record<string, Summary>>;
}

export interface BarPanel {
  title: string;
  groups: BarGroup[];
}

export interface BarChart {
  title: string;
  subtitle: string;
  series: BarSeries[];
  panels: BarPanel[];
}

const HEIGHT = 420;
const TOP = 96;
const BOTTOM = HEIGHT - 70;
const AXIS = 64;
const GAP = 56;
const GROUP_WIDTH = 150;

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const label = (value: number): string =>
  value >= 100 ? Math.round(value).toLocaleString('en-US') : value >= 10 ? value.toFixed(1) : value.toFixed(2);

function niceScale(value: number): { max: number; step: number } {
  const rough = Math.max(value, 1e-6) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? 10 * power;
  return { max: Math.ceil(value / step) * step, step };
}

export function renderBarChart(chart: BarChart): string {
  const panelWidths = chart.panels.map((panel) => Math.max(260, panel.groups.length * GROUP_WIDTH));
  const width = Math.max(
    640,
    panelWidths.reduce((sum, w) => sum + AXIS + w + GAP, 0),
  );
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${HEIGHT}" viewBox="0 0 ${width} ${HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
    `<rect width="${width}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">${escape(chart.title)}</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" fill="#4b5563">${escape(chart.subtitle)}</text>`,
  ];
  let left = 0;
  chart.panels.forEach((panel, index) => {
    const axisX = left + AXIS;
    const panelWidth = panelWidths[index];
    const top = Math.max(
      0,
      ...panel.groups.flatMap((group) =>
        Object.values(group.values).map((summary) => (summary && Number.isFinite(summary.max) ? summary.max : 0)),
      ),
    );
    const { max, step } = niceScale(top * 1.1);
    const y = (value: number): number => BOTTOM - (value / max) * (BOTTOM - TOP);
    for (let tick = 0; tick <= max + step / 2; tick += step) {
      out.push(`<line x1="${axisX}" x2="${axisX + panelWidth}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e7eb"/>`);
      out.push(`<text x="${axisX - 6}" y="${y(tick) + 4}" text-anchor="end" fill="#374151">${label(tick)}</text>`);
    }
    out.push(
      `<text x="${axisX + panelWidth / 2}" y="${TOP - 18}" text-anchor="middle" font-size="14" font-weight="600">${escape(panel.title)}</text>`,
    );
    const groupWidth = panelWidth / Math.max(1, panel.groups.length);
    panel.groups.forEach((group, groupIndex) => {
      const present = chart.series.filter((series) => group.values[series.id] !== undefined);
      const barWidth = Math.min(40, (groupWidth * 0.8) / Math.max(1, present.length));
      const groupLeft = axisX + groupIndex * groupWidth + (groupWidth - barWidth * present.length) / 2;
      present.forEach((series, barIndex) => {
        const summary = group.values[series.id] as Summary;
        if (!Number.isFinite(summary.median)) return;
        const x = groupLeft + barIndex * barWidth;
        const center = x + barWidth / 2;
        out.push(
          `<rect x="${x + 1}" y="${y(summary.median)}" width="${barWidth - 2}" height="${BOTTOM - y(summary.median)}" fill="${series.color}"><title>${escape(`${series.label}, ${group.label}: median ${label(summary.median)} (min ${label(summary.min)}, max ${label(summary.max)})`)}</title></rect>`,
        );
        if (summary.max > summary.min) {
          out.push(
            `<path d="M${center} ${y(summary.max)}V${y(summary.min)}M${center - 4} ${y(summary.max)}H${center + 4}M${center - 4} ${y(summary.min)}H${center + 4}" stroke="#111827" stroke-width="1.2" fill="none"/>`,
          );
        }
        out.push(
          `<text x="${center}" y="${Math.min(y(summary.max), y(summary.median)) - 5}" text-anchor="middle" font-size="10">${label(summary.median)}</text>`,
        );
      });
      out.push(
        `<text x="${axisX + groupIndex * groupWidth + groupWidth / 2}" y="${BOTTOM + 18}" text-anchor="middle" fill="#374151">${escape(group.label)}</text>`,
      );
    });
    out.push(`<line x1="${axisX}" x2="${axisX + panelWidth}" y1="${BOTTOM}" y2="${BOTTOM}" stroke="#6b7280"/>`);
    left += AXIS + panelWidth + GAP;
  });
  let legendX = 20;
  for (const series of chart.series) {
    out.push(`<rect x="${legendX}" y="${HEIGHT - 28}" width="12" height="12" fill="${series.color}"/>`);
    out.push(`<text x="${legendX + 18}" y="${HEIGHT - 18}">${escape(series.label)}</text>`);
    legendX += 28 + series.label.length * 6.5;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
