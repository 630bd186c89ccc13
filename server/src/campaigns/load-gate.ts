/**
 * The load gate of bulk mail (issue 15, seed 001): before each batch it looks at the mail
 * server's health and says whether to send now (and how many), wait, or pause the campaigns.
 *
 * Signals: the local MTA's queue length (`exim -bpc`, when there is a local MTA to ask), the
 * SMTP answers of the last sends (421 and 452 mean "slow down"; other 4xx "try later"; a 5xx
 * that is not about the address, e.g. a refused login, means the relay will not take our mail),
 * their error ratio and their latency. Unhealthy, the gate backs off, doubling its wait. A problem seen
 * in past sends cannot clear by itself (no sends, no new evidence), so once its wait is over the
 * gate lets one mail through as a probe: accepted, the past is forgotten and sending resumes;
 * refused, the next wait is longer. Unhealthy without a break for `pauseAfterMs`, it says pause;
 * paused, it probes every `probeEveryMs`, and the first accepted probe says resume.
 *
 * Pure: it is told the time and the observations, so the policy is tested on its own.
 */

import type { SmtpFailureKind } from '../mail/smtp-transport';

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
  /** Unhealthy this long without a break: the campaigns pause. */
  pauseAfterMs: number;
  /** While paused, one probe mail this often (unless the queue alone shows the server is still loaded). */
  probeEveryMs: number;
}

export const DEFAULT_GATE_LIMITS: GateLimits = {
  maxQueue: 500,
  maxErrorRatio: 0.2,
  maxLatencyMs: 2000,
  window: 50,
  firstWaitMs: 1000,
  maxWaitMs: 60_000,
  pauseAfterMs: 10 * 60_000,
  probeEveryMs: 60_000,
};

/** How one send went, as the sender saw it (`smtp-transport.ts` reads a failure). */
export type SendAnswer = 'accepted' | SmtpFailureKind;

export type GateDecision =
  /** `probe`: one mail only, to find out whether the relay is healthy again. */
  | { action: 'send'; probe: boolean }
  | { action: 'wait'; waitMs: number; reason: string }
  /** Unhealthy for the whole deadline: pause with this reason (said once; then the gate probes). */
  | { action: 'pause'; reason: string };

interface Sent {
  answer: SendAnswer;
  latencyMs: number;
}

export class LoadGate {
  private recent: Sent[] = [];
  /** When the current run of unhealthy looks began; null while healthy. */
  private unhealthySince: number | null = null;
  private nextWaitMs: number;
  /** A slow-down answer holds sending until then, however healthy the rest looks. */
  private slowDownUntil = 0;
  /** A probe may go at or after this time (set whenever a wait is given out). */
  private probeAt = 0;
  /** Since when the gate has the campaigns paused; null while it does not. */
  private pausedSince: number | null = null;
  private lastReason = '';

  constructor(readonly limits: GateLimits = DEFAULT_GATE_LIMITS) {
    this.nextWaitMs = limits.firstWaitMs;
  }

  get paused(): boolean {
    return this.pausedSince !== null;
  }

  /** Records a send's answer and latency. A refusal for good says nothing about load; an accepted mail while unhealthy was a successful probe. */
  observe(answer: SendAnswer, latencyMs: number, now: number): void {
    if (answer === 'refused') return;
    if (answer === 'accepted' && (this.pausedSince !== null || (this.unhealthySince !== null && this.sendsProblem() !== null))) {
      this.recover();
      return;
    }
    this.recent.push({ answer, latencyMs });
    if (this.recent.length > this.limits.window) this.recent.shift();
    if (answer === 'slow_down') this.slowDownUntil = Math.max(this.slowDownUntil, now + this.nextWaitMs);
  }

  /**
   * Whether a batch under way should stop sending now (the seed checks again while sending): a
   * slow-down answer, or the last sends failing, seen since the batch began. The queue is only
   * read before a batch.
   */
  stopsBatch(now: number): boolean {
    return now < this.slowDownUntil || this.sendsProblem() !== null;
  }

  /** What to do now, given the local queue's length (null: no local MTA to ask). */
  check(queueLength: number | null, now: number): GateDecision {
    const loaded = this.queueProblem(queueLength) ?? (now < this.slowDownUntil ? 'the mail server asked to slow down (421/452)' : null);
    if (this.pausedSince !== null) return this.whilePaused(loaded, now);
    const reason = loaded ?? this.sendsProblem();
    if (reason === null) {
      // Healthy: the back-off starts over. The recent sends stay: only new evidence (or an
      // accepted probe) changes what they say.
      this.unhealthySince = null;
      this.nextWaitMs = this.limits.firstWaitMs;
      this.probeAt = 0;
      return { action: 'send', probe: false };
    }
    this.lastReason = reason;
    this.unhealthySince ??= now;
    if (now - this.unhealthySince >= this.limits.pauseAfterMs) {
      this.pausedSince = now;
      this.probeAt = now + this.limits.probeEveryMs;
      return { action: 'pause', reason: `${reason}, for ${Math.round((now - this.unhealthySince) / 1000)} s` };
    }
    // Only past sends are wrong: once the last wait is over, one mail finds out whether they still are.
    if (loaded === null && this.probeAt > 0 && now >= this.probeAt) return this.probe(Number.POSITIVE_INFINITY);
    const waitMs = this.nextWaitMs;
    this.nextWaitMs = Math.min(this.nextWaitMs * 2, this.limits.maxWaitMs);
    this.probeAt = now + waitMs;
    return { action: 'wait', waitMs, reason };
  }

  private whilePaused(loaded: string | null, now: number): GateDecision {
    if (loaded !== null) this.lastReason = loaded;
    if (now >= this.probeAt) {
      if (loaded === null) return this.probe(now + this.limits.probeEveryMs);
      // Still loaded at probe time: no probe, and the next look is a whole interval away.
      this.probeAt = now + this.limits.probeEveryMs;
    }
    return { action: 'wait', waitMs: this.probeAt - now, reason: `paused: ${this.lastReason}` };
  }

  /** One mail may go; until `next`, no other (a failed probe's answer then makes the next wait). */
  private probe(next: number): GateDecision {
    this.probeAt = next;
    return { action: 'send', probe: true };
  }

  private recover(): void {
    this.recent = [];
    this.unhealthySince = null;
    this.pausedSince = null;
    this.probeAt = 0;
    this.nextWaitMs = this.limits.firstWaitMs;
  }

  private queueProblem(queueLength: number | null): string | null {
    if (queueLength !== null && queueLength > this.limits.maxQueue) return `the mail server's queue holds ${queueLength} messages (limit ${this.limits.maxQueue})`;
    return null;
  }

  private sendsProblem(): string | null {
    // A run of failures (a relay that refuses connections or our login) is plain before there are enough sends for a ratio.
    const last = this.recent.slice(-3);
    if (last.length === 3 && last.every((s) => s.answer !== 'accepted')) return `the last 3 sends failed (${last.at(-1)?.answer})`;
    if (this.recent.length < Math.min(10, this.limits.window)) return null;
    const failed = this.recent.filter((s) => s.answer !== 'accepted').length / this.recent.length;
    if (failed > this.limits.maxErrorRatio) return `${Math.round(failed * 100)} % of the last ${this.recent.length} sends failed (limit ${Math.round(this.limits.maxErrorRatio * 100)} %)`;
    const latencies = this.recent.map((s) => s.latencyMs).sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)] as number;
    if (median > this.limits.maxLatencyMs) return `sends take ${median} ms (median; limit ${this.limits.maxLatencyMs} ms)`;
    return null;
  }
}
