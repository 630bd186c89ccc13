/**
 * When a failed job runs again. A schedule maps the number of attempts made so far to the
 * delay before the next one, or to null: no more attempts, the job fails for good.
 *
 * Delays carry jitter so that jobs which failed together (a receiver that was down for a
 * minute) do not all come back in the same second and knock it over again.
 */
export type RetrySchedule = (attempts: number) => number | null;

/** A fraction of each delay drawn at random: 0.2 means the delay lands anywhere in ±20 %. */
const DEFAULT_JITTER = 0.2;

const jittered = (ms: number, jitter: number, random: () => number): number => Math.round(ms * (1 - jitter + 2 * jitter * random()));

export interface BackoffOptions {
  /** The delay after the first failed attempt. */
  firstMs: number;
  /** No delay is longer than this (before jitter). */
  maxMs: number;
  /** After this many attempts the job fails; unset: it is retried for as long as it takes. */
  maxAttempts?: number;
  jitter?: number;
  random?: () => number;
}

/** Doubles the delay with every attempt: firstMs, 2·firstMs, 4·firstMs, … up to maxMs. */
export function exponentialBackoff(o: BackoffOptions): RetrySchedule {
  const jitter = o.jitter ?? DEFAULT_JITTER;
  const random = o.random ?? Math.random;
  return (attempts) => {
    if (o.maxAttempts !== undefined && attempts >= o.maxAttempts) return null;
    const base = Math.min(o.firstMs * 2 ** Math.max(0, attempts - 1), o.maxMs);
    return jittered(base, jitter, random);
  };
}

/**
 * A fixed list of delays, one per retry (Svix's webhook schedule is one: 5 s, 5 min, 30 min,
 * …); once the list is used up the job fails.
 */
export function fixedSchedule(delaysMs: readonly number[], o: { jitter?: number; random?: () => number } = {}): RetrySchedule {
  const jitter = o.jitter ?? DEFAULT_JITTER;
  const random = o.random ?? Math.random;
  return (attempts) => {
    const delay = delaysMs[attempts - 1];
    return delay === undefined ? null : jittered(delay, jitter, random);
  };
}
