/**
 * A worker: passes over one job queue, one at a time, every `intervalMs` (or sooner when
 * woken). Each pass claims a batch, hands it to `handle`, and records what `handle` reports for
 * each job. Run one per queue in every app server; the leases keep them from doing a job twice.
 */
import type { Logger } from '../logger';
import type { Job, JobQueue } from './job-queue';
import { PassLoop } from './pass-loop';
import type { RetrySchedule } from './retry-schedule';

export type JobOutcome =
  | { id: number; outcome: 'done' }
  /** Try again when the schedule says (or fail for good once it says stop). */
  | { id: number; outcome: 'retry'; error: string }
  /** Retrying cannot help. */
  | { id: number; outcome: 'failed'; error: string }
  /** Not settled by this pass: the handler settles it later itself, or the lease runs out. */
  | { id: number; outcome: 'held' };

/**
 * A handler that does a batch's jobs one after the other: for jobs that are each a transaction
 * of their own, where running them side by side would only contend for the same rows.
 */
export function oneAtATime<P>(fn: (job: Job<P>) => Promise<JobOutcome>): (jobs: Job<P>[]) => Promise<JobOutcome[]> {
  return async (jobs) => {
    const outcomes: JobOutcome[] = [];
    for (const job of jobs) outcomes.push(await fn(job));
    return outcomes;
  };
}

export interface WorkerOptions<P> {
  queue: JobQueue<P>;
  /** Does the jobs; reports on each. A throw counts as a retry of the whole batch. */
  handle: (jobs: Job<P>[]) => Promise<JobOutcome[]>;
  schedule: RetrySchedule;
  batch: number;
  /** Longer than the handler needs for a batch: a job still held when it ends is done twice. */
  leaseMs: number;
  intervalMs: number;
  logger: Logger;
  /** Claims nothing while this is false: what the jobs need is down, and claiming would only hide them from the other workers. */
  ready?: () => boolean;
  /** Finished jobs are kept this long for operators, then deleted. */
  keep?: { doneMs: number; failedMs: number };
  /** Told of every pass's outcomes, for metrics. */
  onPass?: (counts: Record<JobOutcome['outcome'], number>) => void;
}

const PRUNE_EVERY_MS = 60_000;
const DEFAULT_KEEP = { doneMs: 60 * 60_000, failedMs: 7 * 24 * 60 * 60_000 };

export class Worker<P> {
  private readonly loop: PassLoop<number>;
  private lastPrune = 0;

  constructor(private readonly o: WorkerOptions<P>) {
    this.loop = new PassLoop({
      pass: () => this.pass(),
      // A full batch means more is waiting: the next pass starts at once instead of after the interval.
      after: (claimed) => (claimed >= o.batch ? 0 : o.intervalMs),
      afterError: (err) => {
        o.logger.warn({ queue: o.queue.name, err: (err as Error).message }, 'worker pass failed');
        return o.intervalMs;
      },
    });
  }

  get queue(): JobQueue<P> {
    return this.o.queue;
  }

  start(): void {
    this.loop.start(this.o.intervalMs);
  }

  /** Stops passing; resolves once the pass in progress has ended. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Runs a pass soon instead of at the next interval: new work was just added. */
  wake(): void {
    this.loop.wake();
  }

  /** One pass: claim, handle, record. Resolves to the number of jobs it claimed. */
  runOnce(): Promise<number> {
    return this.loop.runOnce();
  }

  private async pass(): Promise<number> {
    if (this.o.ready && !this.o.ready()) return 0;
    const jobs = await this.o.queue.claim(this.o.batch, this.o.leaseMs);
    if (jobs.length > 0) await this.settle(jobs, await this.handle(jobs));
    await this.pruneNow();
    return jobs.length;
  }

  private async handle(jobs: Job<P>[]): Promise<JobOutcome[]> {
    try {
      return await this.o.handle(jobs);
    } catch (err) {
      const error = (err as Error).message;
      this.o.logger.warn({ queue: this.o.queue.name, jobs: jobs.length, err: error }, 'worker batch failed; retrying it');
      return jobs.map((j) => ({ id: j.id, outcome: 'retry', error }));
    }
  }

  private async settle(jobs: Job<P>[], outcomes: JobOutcome[]): Promise<void> {
    const attempts = new Map(jobs.map((j) => [j.id, j.attempts]));
    const counts: Record<JobOutcome['outcome'], number> = { done: 0, retry: 0, failed: 0, held: 0 };
    for (const o of outcomes) counts[o.outcome]++;
    const q = this.o.queue;
    const gaveUp = await q.retry(
      outcomes.flatMap((o) => (o.outcome === 'retry' ? [{ id: o.id, error: o.error, attempts: attempts.get(o.id) ?? 1 }] : [])),
      this.o.schedule,
    );
    await Promise.all([
      q.complete(outcomes.filter((o) => o.outcome === 'done').map((o) => o.id)),
      q.fail(outcomes.flatMap((o) => (o.outcome === 'failed' ? [{ id: o.id, error: o.error }] : []))),
    ]);
    if (gaveUp.length > 0) this.o.logger.error({ queue: q.name, jobs: gaveUp }, 'jobs failed for good after their last retry');
    this.o.onPass?.(counts);
  }

  private async pruneNow(): Promise<void> {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    await this.o.queue.prune(this.o.keep ?? DEFAULT_KEEP);
  }
}
