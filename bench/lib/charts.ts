/**
 * The pictures of a benchmark run: a latency CDF per fan-out scenario (every target on one
 * chart) and the saturation curve (offered deliveries per second against p99). SVG files beside
 * the run's JSON; docs/performance.md links the latest ones.
 */
import type { Results } from './report';
import { lineChart } from './svg-chart';

/** name → SVG text, for the scenarios the run has. */
export function charts(r: Results): Record<string, string> {
  const out: Record<string, string> = {};
  const cdfs = { fanout: 'room of 500, 10 msg/s', throughput: '10 rooms × 50, 200 msg/s' } as const;
  for (const [scenario, what] of Object.entries(cdfs) as [keyof typeof cdfs, string][]) {
    const rows = r[scenario];
    if (!rows || rows.length === 0) continue;
    out[`${scenario}-cdf`] = lineChart(
      rows.map((x) => ({ name: x.target, points: x.latencyCdf.map(([q, ms]) => [ms, q * 100] as [number, number]) })),
      { title: `POST → receive latency, ${what}`, xLabel: 'latency (ms, log scale)', yLabel: 'deliveries at or under it (%)', xLog: true },
    );
  }
  if (r.saturation && r.saturation.length > 0) {
    const limit = r.saturation[0]?.p99LimitMs ?? 100;
    out.saturation = lineChart(
      r.saturation.map((s) => ({ name: s.target, points: s.points.map((p) => [p.offeredDeliveriesPerSecond, Math.max(p.p99Ms, 0.1)] as [number, number]) })),
      {
        title: `Saturation: p99 against the offered rate (10 rooms × ${(r.saturation[0]?.subscribers ?? 500) / 10})`,
        xLabel: 'deliveries per second offered (log scale)',
        yLabel: 'p99 POST → receive (ms, log scale)',
        xLog: true,
        yLog: true,
        yMark: { value: limit, label: `${limit} ms` },
      },
    );
  }
  return out;
}
