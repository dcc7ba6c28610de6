// Quantiles and number formatting for the tables.

/** Nearest-rank quantile (p in 0..1); NaN for an empty list. */
export function quantile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

export function mean(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

export function max(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite);
  return v.length ? Math.max(...v) : NaN;
}

export const fx = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
