import { describe, expect, it } from 'vitest';
import { exponentialBackoff, fixedSchedule } from '../../src/work/retry-schedule';

describe('retry schedules', () => {
  it('doubles from the first delay up to the cap, and stops after the last attempt', () => {
    const s = exponentialBackoff({ firstMs: 100, maxMs: 1000, maxAttempts: 6, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(s)).toEqual([100, 200, 400, 800, 1000, null]);
  });

  it('retries for as long as it takes without a limit', () => {
    expect(exponentialBackoff({ firstMs: 100, maxMs: 1000, jitter: 0 })(1000)).toBe(1000);
  });

  it('spreads delays by the jitter, both ways', () => {
    const low = exponentialBackoff({ firstMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0 });
    const high = exponentialBackoff({ firstMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0.999999 });
    expect(low(1)).toBe(800);
    expect(high(1)).toBe(1200);
  });

  it('follows a fixed list and ends with it', () => {
    const s = fixedSchedule([0, 5000, 300_000], { jitter: 0 });
    expect([1, 2, 3, 4].map(s)).toEqual([0, 5000, 300_000, null]);
  });
});
