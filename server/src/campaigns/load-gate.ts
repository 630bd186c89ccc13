/**
 * The load gate of bulk mail (issue 15, seed 001): before each batch, and after every send, it
 * looks at the mail server's health and says whether to send now, wait, or pause the campaign.
 *
 * Signals: the local MTA's queue length (`exim -bpc`, when there is a local MTA to ask), the
 * SMTP answers of the last sends (421 and 452 mean "slow down"; 451 "try later"), their error
 * ratio and their latency. Unhealthy, the gate backs off, doubling its wait; unhealthy without a
 * break for longer than the deadline, it pauses the campaign with the reason, and a paused
 * campaign is resumed when the gate finds the server healthy again (or by hand).
 *
 * Pure: it is told the time and the observations, so the policy is tested on its own.
 */

export interface GateLimits {
  /** Messages in the local MTA's queue above which sending waits. */
  maxQueue: number;
  /** Share of failed sends (4xx, timeouts) among the last `window` above which sending waits. */
  maxErrorRatio: number;
  /** Median send latency of the last `window` above which sending waits. */
  maxLatencyMs: number;
  /** How many recent sends the ratio and the latency look at. */
  window: number;
  /** The first wait, doubled while unhealthy, up to `maxWaitMs`. */
  firstWaitMs: number;
  maxWaitMs: number;
  /** Unhealthy this long without a break: the campaign pauses. */
  pauseAfterMs: number;
}

export const DEFAULT_GATE_LIMITS: GateLimits = {
  maxQueue: 500,
  maxErrorRatio: 0.2,
  maxLatencyMs: 2000,
  window: 50,
  firstWaitMs: 1000,
  maxWaitMs: 60_000,
  pauseAfterMs: 10 * 60_000,
};

/** How one send went, as the sender saw it. */
export type SendAnswer = 'accepted' | 'slow_down' | 'deferred' | 'refused' | 'timeout';

/** 421 and 452 ask the client to slow down; 451 defers this mail; 5xx refuses it for good. */
export function answerOf(code: number | undefined, timedOut = false): SendAnswer {
  if (timedOut || code === undefined) return 'timeout';
  if (code < 400) return 'accepted';
  if (code === 421 || code === 452) return 'slow_down';
  if (code < 500) return 'deferred';
  return 'refused';
}

export type GateDecision =
  | { action: 'send' }
  | { action: 'wait'; waitMs: number; reason: string }
  | { action: 'pause'; reason: string };

interface Sent {
  answer: SendAnswer;
  latencyMs: number;
}

export class LoadGate {
  private readonly recent: Sent[] = [];
  /** When the server was first seen unhealthy in the current run of unhealthy looks; null while healthy. */
  private unhealthySince: number | null = null;
  private nextWaitMs: number;
  /** A slow-down answer holds sending for one wait, however healthy the rest looks. */
  private slowDownUntil = 0;

  constructor(private readonly limits: GateLimits = DEFAULT_GATE_LIMITS) {
    this.nextWaitMs = limits.firstWaitMs;
  }

  /** Records a send's answer and latency (a refusal for good says nothing about load). */
  observe(answer: SendAnswer, latencyMs: number, now: number): void {
    if (answer === 'refused') return;
    this.recent.push({ answer, latencyMs });
    if (this.recent.length > this.limits.window) this.recent.shift();
    if (answer === 'slow_down') this.slowDownUntil = Math.max(this.slowDownUntil, now + this.nextWaitMs);
  }

  /** What to do now, given the local queue's length (null: no local MTA to ask). */
  check(queueLength: number | null, now: number): GateDecision {
    const reason = this.problem(queueLength, now);
    if (reason === null) {
      this.unhealthySince = null;
      this.nextWaitMs = this.limits.firstWaitMs;
      return { action: 'send' };
    }
    this.unhealthySince ??= now;
    if (now - this.unhealthySince >= this.limits.pauseAfterMs) {
      return { action: 'pause', reason: `${reason}, for ${Math.round((now - this.unhealthySince) / 1000)} s` };
    }
    const waitMs = this.nextWaitMs;
    this.nextWaitMs = Math.min(this.nextWaitMs * 2, this.limits.maxWaitMs);
    return { action: 'wait', waitMs, reason };
  }

  private problem(queueLength: number | null, now: number): string | null {
    if (queueLength !== null && queueLength > this.limits.maxQueue) return `the mail server's queue holds ${queueLength} messages (limit ${this.limits.maxQueue})`;
    if (now < this.slowDownUntil) return 'the mail server asked to slow down (421/452)';
    if (this.recent.length >= Math.min(10, this.limits.window)) {
      const failed = this.recent.filter((s) => s.answer !== 'accepted').length / this.recent.length;
      if (failed > this.limits.maxErrorRatio) return `${Math.round(failed * 100)} % of the last ${this.recent.length} sends failed (limit ${Math.round(this.limits.maxErrorRatio * 100)} %)`;
      const latencies = this.recent.map((s) => s.latencyMs).sort((a, b) => a - b);
      const median = latencies[Math.floor(latencies.length / 2)] as number;
      if (median > this.limits.maxLatencyMs) return `sends take ${median} ms (median; limit ${this.limits.maxLatencyMs} ms)`;
    }
    return null;
  }
}
