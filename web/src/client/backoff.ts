/** Reconnect and retry pacing. */

export interface BackoffOptions {
  /** Delay before the first retry. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the capped exponential delay plus a random
 * part up to the other half. The random part spreads a classroom of clients that all lost the
 * same broker node; the fixed half keeps any one client from hammering.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const capped = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return capped / 2 + random() * (capped / 2);
}

/**
 * Sleeps that can be cut short: when the network comes back or the client stops, waiting out
 * a 15 s backoff would only delay the person.
 */
export class Waker {
  private readonly sleepers = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** Ends every sleep in progress now. */
  wake(): void {
    for (const done of [...this.sleepers]) done();
  }
}
