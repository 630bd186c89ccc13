/** Latency summaries: nearest-rank percentiles over raw samples (milliseconds). */
export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[n - 1] as number, mean: sum / n };
}

export const round = (v: number, digits = 2): number => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/** The summary with each figure rounded to two decimals, for reports. */
export const roundSummary = (s: LatencySummary): LatencySummary => ({
  count: s.count,
  p50: round(s.p50),
  p95: round(s.p95),
  p99: round(s.p99),
  max: round(s.max),
  mean: round(s.mean),
});

/** Quantiles at which a latency CDF is drawn: every percent, then the tail. */
const CDF_POINTS = [...Array.from({ length: 99 }, (_, i) => (i + 1) / 100), 0.995, 0.999, 1];

/** The latency CDF as [fraction, ms] pairs (nearest rank), for the report's pictures. */
export function cdf(samples: ArrayLike<number>): [number, number][] {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return [];
  return CDF_POINTS.map((q) => [q, round(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number)]);
}
