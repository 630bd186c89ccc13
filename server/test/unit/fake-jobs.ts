/**
 * The publish jobs as the `jobs` table keeps them, in memory, by the (fake) clock: enough to ask
 * "could a relay claim this job now?". Writes can be held back, as a slow database holds them.
 */
import type { JobFailure } from '../../src/work/job-queue';
import type { RetrySchedule } from '../../src/work/retry-schedule';

interface FakeJob {
  state: 'pending' | 'done' | 'failed';
  leaseUntil: number;
  runAt: number;
  lastError: string | null;
}

export class FakeJobs {
  readonly rows = new Map<number, FakeJob>();
  readonly calls: { op: 'complete' | 'renew' | 'retry'; ids: number[] }[] = [];
  /** While set, writes of that kind wait for it. */
  readonly gates: Partial<Record<'complete' | 'renew' | 'retry', Promise<void>>> = {};

  /** A job as `roomcast_send` makes it: leased to the send request for `leaseMs`. */
  add(id: number, leaseMs: number): void {
    this.rows.set(id, { state: 'pending', leaseUntil: Date.now() + leaseMs, runAt: Date.now(), lastError: null });
  }

  /** Whether a relay's claim would take the job now. */
  claimable(id: number): boolean {
    const j = this.rows.get(id);
    return j !== undefined && j.state === 'pending' && j.runAt <= Date.now() && j.leaseUntil < Date.now();
  }

  private async write(op: 'complete' | 'renew' | 'retry', ids: number[], apply: (j: FakeJob) => void): Promise<void> {
    if (ids.length === 0) return;
    this.calls.push({ op, ids });
    await this.gates[op];
    for (const id of ids) {
      const j = this.rows.get(id);
      if (j?.state === 'pending') apply(j);
    }
  }

  complete = (ids: readonly number[]): Promise<void> => this.write('complete', [...ids], (j) => (j.state = 'done'));

  renew = (ids: readonly number[], leaseMs: number): Promise<void> =>
    this.write('renew', [...ids], (j) => (j.leaseUntil = Math.max(j.leaseUntil, Date.now() + leaseMs)));

  retry = async (failures: readonly JobFailure[], schedule: RetrySchedule): Promise<number[]> => {
    const delays = new Map(failures.map((f) => [f.id, schedule(f.attempts)]));
    await this.write(
      'retry',
      failures.map((f) => f.id),
      (j) => {
        const id = [...this.rows.entries()].find(([, r]) => r === j)![0];
        const delay = delays.get(id) ?? null;
        if (delay === null) j.state = 'failed';
        else j.runAt = Date.now() + delay;
        j.leaseUntil = 0;
        j.lastError = failures.find((f) => f.id === id)!.error;
      },
    );
    return failures.filter((f) => delays.get(f.id) === null).map((f) => f.id);
  };

  ops(op: 'complete' | 'renew' | 'retry'): number[] {
    return this.calls.filter((c) => c.op === op).flatMap((c) => c.ids);
  }
}
