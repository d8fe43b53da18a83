/** Medians and spreads: every published figure is a median over repeated runs. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  p99: number;
  count: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    p99: quantile(sorted, 0.99),
    count: sorted.length,
  };
}

export const median = (values: readonly number[]): number => summarize(values).median;
