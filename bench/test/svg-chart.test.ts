import { describe, expect, it } from 'vitest';
import { charts } from '../lib/charts';
import { lineChart } from '../lib/svg-chart';

const polylines = (svg: string): string[][] => [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => (m[1] ?? '').split(' '));

describe('benchmark pictures', () => {
  it('draws one line per series inside the plot, a legend entry each, and leaves out what a log scale cannot show', () => {
    const svg = lineChart(
      [
        { name: 'a <b>', points: [[1, 1], [10, 5], [100, 50]] },
        { name: 'b', points: [[0, 3], [10, 2], [100, 8]] },
      ],
      { title: 'T', xLabel: 'x', yLabel: 'y', xLog: true, yMark: { value: 100, label: 'limit' } },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const lines = polylines(svg);
    expect(lines.map((l) => l.length)).toEqual([3, 2]); // x = 0 has no place on a log axis
    for (const [x, y] of lines.flat().map((p) => p.split(',').map(Number) as [number, number])) {
      expect(x).toBeGreaterThanOrEqual(70);
      expect(x).toBeLessThanOrEqual(780 - 240);
      expect(y).toBeGreaterThanOrEqual(40);
      expect(y).toBeLessThanOrEqual(420 - 50);
    }
    // Higher values are drawn higher up (smaller y).
    const first = (lines[0] ?? []).map((p) => Number(p.split(',')[1]));
    expect(first[0]).toBeGreaterThan(first[2] as number);
    expect(svg).toContain('a &lt;b&gt;');
    expect(svg).toContain('stroke-dasharray');
  });

  it('makes a CDF per fan-out scenario and the saturation curve from a run', () => {
    const fan = (target: string) => ({ target, latencyCdf: [[0.5, 10], [0.99, 40], [1, 90]] as [number, number][] });
    const run = {
      fanout: [fan('roomcast (wss via proxy)'), fan('bare ws')],
      saturation: [
        { target: 'bare ws', rooms: 10, subscribers: 500, p99LimitMs: 100, sustainedDeliveriesPerSecond: 9000, reachedMaxRate: false, points: [
          { ratePerSecond: 20, offeredDeliveriesPerSecond: 1000, deliveriesPerSecond: 790, p99Ms: 5, lost: 0, duplicates: 0, ok: true },
          { ratePerSecond: 40, offeredDeliveriesPerSecond: 2000, deliveriesPerSecond: 1580, p99Ms: 300, lost: 0, duplicates: 0, ok: false },
        ] },
      ],
    };
    const out = charts(run as unknown as Parameters<typeof charts>[0]);
    expect(Object.keys(out).sort()).toEqual(['fanout-cdf', 'saturation']);
    expect(polylines(out['fanout-cdf'] ?? '').map((l) => l.length)).toEqual([3, 3]);
    expect(polylines(out.saturation ?? '')[0]).toHaveLength(2);
  });
});
