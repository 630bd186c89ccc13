/** Reconnect and retry pacing: exponential backoff with equal jitter, and sleeps that can be cut short. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Waker, backoffDelay } from '../src/client/backoff';

const OPTIONS = { initialMs: 500, maxMs: 15_000 };

describe('backoffDelay', () => {
  it('doubles from the initial delay: half of it fixed, half random', () => {
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, OPTIONS, () => 0))).toEqual([250, 500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, OPTIONS, () => 0.5))).toEqual([375, 750, 1500, 3000, 6000]);
  });

  it('never exceeds the maximum, and keeps half of it fixed once there', () => {
    for (const attempt of [5, 6, 10, 31, 1000, 1e9]) {
      expect(backoffDelay(attempt, OPTIONS, () => 0)).toBe(7500);
      expect(backoffDelay(attempt, OPTIONS, () => 0.999999)).toBeLessThan(15_000);
      expect(backoffDelay(attempt, OPTIONS, () => 0.999999)).toBeGreaterThan(14_999);
    }
  });

  it('stays a number for huge attempts even with a zero initial delay', () => {
    expect(backoffDelay(5000, { initialMs: 0, maxMs: 1000 }, () => 0.5)).toBe(0);
  });

  it('uses Math.random by default, within [capped / 2, capped) and spread over that range', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, OPTIONS));
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThan(4000);
    }
    // Spread: a classroom that lost the same node must not come back in step.
    expect(Math.min(...delays)).toBeLessThan(2200);
    expect(Math.max(...delays)).toBeGreaterThan(3800);
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.25);
    expect(backoffDelay(3, OPTIONS)).toBe(2500);
    expect(random).toHaveBeenCalledOnce();
    random.mockRestore();
  });
});

describe('Waker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  /** Flags which sleeps have ended: `done[i]` turns true when sleep i resolves. */
  const track = (sleeps: Promise<void>[]): boolean[] => {
    const done = sleeps.map(() => false);
    sleeps.forEach((s, i) => void s.then(() => (done[i] = true)));
    return done;
  };

  it('sleeps for the time asked, not less', async () => {
    const waker = new Waker();
    const done = track([waker.sleep(1000)]);
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toEqual([false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toEqual([true]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('wake ends every sleep in progress at once and leaves no timer behind', async () => {
    const waker = new Waker();
    const done = track([waker.sleep(15_000), waker.sleep(60_000)]);
    await vi.advanceTimersByTimeAsync(10);
    waker.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toEqual([true, true]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a wake does not cut short a sleep that starts after it', async () => {
    const waker = new Waker();
    waker.wake();
    const done = track([waker.sleep(500)]);
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toEqual([false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toEqual([true]);
  });

  it('a sleep that ended on its own is not woken again, and others are unaffected', async () => {
    const waker = new Waker();
    const done = track([waker.sleep(100), waker.sleep(1000)]);
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toEqual([true, false]);
    waker.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toEqual([true, true]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
