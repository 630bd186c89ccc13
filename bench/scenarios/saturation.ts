/**
 * Saturation: the highest deliveries per second a target sustains with p99 POST→receive at or
 * under a limit, found by a search over the post rate rather than read off one fixed rate. The
 * rate doubles from `startRate` until a step fails (p99 over the limit, a message lost or
 * duplicated, or deliveries falling behind what was offered), then bisects between the last
 * good and the first bad rate. Every step is a full fan-out run (fanout.ts); every point is kept
 * for the saturation curve (rate against p99).
 */
import { round } from '../../testkit/stats';
import type { Target } from '../lib/target';
import { DRAIN_MS, runFanout } from './fanout';

export interface SaturationOptions {
  rooms: number;
  subscribersPerRoom: number;
  /** Posts per second over all rooms at the first step. */
  startRate: number;
  maxRate: number;
  stepMs: number;
  p99LimitMs: number;
  /** Bisection steps after the first failure. */
  refineSteps: number;
  subscriberProcesses: number;
  progress: (line: string) => void;
}

export interface SaturationPoint {
  ratePerSecond: number;
  offeredDeliveriesPerSecond: number;
  deliveriesPerSecond: number;
  p99Ms: number;
  lost: number;
  duplicates: number;
  /** Within the limit, nothing lost or duplicated, and keeping up (≥ 95 % of what was offered). */
  ok: boolean;
}

export interface SaturationResult {
  target: string;
  rooms: number;
  subscribers: number;
  p99LimitMs: number;
  points: SaturationPoint[];
  /**
   * Deliveries per second offered at the highest rate that passed (which it kept up with, nothing
   * lost); 0 when none did. `deliveriesPerSecond` of a point counts the drain too, so it reads lower.
   */
  sustainedDeliveriesPerSecond: number;
  /** True when even maxRate passed: the figure is a floor, not the saturation point. */
  reachedMaxRate: boolean;
}

export async function runSaturation(target: Target, o: SaturationOptions): Promise<SaturationResult> {
  const points: SaturationPoint[] = [];
  const step = async (rate: number): Promise<SaturationPoint> => {
    const r = await runFanout(target, {
      rooms: o.rooms,
      subscribersPerRoom: o.subscribersPerRoom,
      ratePerSecond: rate,
      durationMs: o.stepMs,
      subscriberProcesses: o.subscriberProcesses,
      progress: () => undefined,
    });
    const offered = rate * o.subscribersPerRoom;
    const p: SaturationPoint = {
      ratePerSecond: rate,
      offeredDeliveriesPerSecond: offered,
      deliveriesPerSecond: r.deliveriesPerSecond,
      p99Ms: r.latencyMs.p99,
      lost: r.lost,
      duplicates: r.duplicates,
      ok: r.lost === 0 && r.duplicates === 0 && r.latencyMs.p99 <= o.p99LimitMs && r.deliveriesPerSecond >= 0.95 * offered * (o.stepMs / (o.stepMs + DRAIN_MS)),
    };
    points.push(p);
    o.progress(`${target.name}: ${rate} msg/s (${offered} deliveries/s offered): ${p.deliveriesPerSecond}/s, p99 ${p.p99Ms} ms, lost ${p.lost}: ${p.ok ? 'ok' : 'over'}`);
    return p;
  };

  let good: SaturationPoint | null = null;
  let bad: number | null = null;
  for (let rate = o.startRate; rate <= o.maxRate; rate *= 2) {
    const p = await step(rate);
    if (!p.ok) {
      bad = rate;
      break;
    }
    good = p;
  }
  for (let i = 0; i < o.refineSteps && bad !== null; i++) {
    const low = good?.ratePerSecond ?? 0;
    const mid = Math.round((low + bad) / 2);
    if (mid <= low || mid >= bad) break;
    const p = await step(mid);
    if (p.ok) good = p;
    else bad = mid;
  }
  return {
    target: target.name,
    rooms: o.rooms,
    subscribers: o.rooms * o.subscribersPerRoom,
    p99LimitMs: o.p99LimitMs,
    points: points.sort((a, b) => a.ratePerSecond - b.ratePerSecond),
    sustainedDeliveriesPerSecond: round(good?.offeredDeliveriesPerSecond ?? 0, 0),
    reachedMaxRate: bad === null,
  };
}
