/**
 * The leased-work mechanism: one queue of jobs in the `jobs` table (migration 005), shared by
 * every worker of every app server. docs/leased-work.md says how to build a worker on it.
 *
 * - `claim` takes due jobs with FOR UPDATE SKIP LOCKED and leases them: until the lease ends
 *   no other claim returns them, and two workers never hold one job. A worker that dies keeps
 *   its jobs only until their leases end; then any worker takes them again.
 * - A held job ends `complete` (done), `retry` (due again when the schedule says, or failed
 *   for good once it says stop), `fail` (failed for good at once), `release` (due again now,
 *   for an attempt that is known to be lost) or `postpone` (due again later, not a failure).
 *   `renew` keeps a slow job's lease; `wake` makes waiting jobs due now.
 * - Every state change is on `state = 'pending'`, so a late answer for a job another worker has
 *   finished meanwhile changes nothing.
 *
 * Times are Postgres's clock (`now()`), so servers with skewed clocks agree on leases.
 */
import type { Pool, PoolClient } from '../db/pool';
import type { RetrySchedule } from './retry-schedule';

export interface Job<P = Record<string, unknown>> {
  id: number;
  ref: string;
  payload: P;
  /** Attempts started, this one included. */
  attempts: number;
  createdAt: Date;
}

export interface JobFailure {
  id: number;
  /** Why it failed: kept in `last_error` for operators. */
  error: string;
  /** Attempts made so far: the schedule's input. */
  attempts: number;
}

export interface QueueStats {
  /** Jobs not finished: due, leased or waiting for a retry. */
  pending: number;
  failed: number;
  /** How long the oldest unfinished job has waited, in seconds; 0 when none. */
  oldestPendingSeconds: number;
}

type Queryable = Pick<Pool | PoolClient, 'query'>;

/**
 * Pending and failed jobs of every queue that has any: the `roomcast_jobs` gauge. Queues made
 * per thing (`campaign:<id>`) count under their family (`campaign`): one series, not one per id.
 */
export async function jobCounts(pool: Pool): Promise<{ queue: string; pending: number; failed: number }[]> {
  const { rows } = await pool.query<{ queue: string; pending: number; failed: number }>(
    `SELECT split_part(queue, ':', 1) AS queue, count(*) FILTER (WHERE state = 'pending')::int AS pending,
            count(*) FILTER (WHERE state = 'failed')::int AS failed
       FROM jobs WHERE state <> 'done' GROUP BY 1 ORDER BY 1`,
  );
  return rows;
}

const secs = (ms: number): number => ms / 1000;

export class JobQueue<P = Record<string, unknown>> {
  constructor(
    private readonly pool: Pool,
    readonly name: string,
  ) {}

  /**
   * Adds a job for `ref` unless the queue has one already, inside the caller's transaction when
   * `db` is one: the job commits with what caused it or not at all. Resolves to the job's id.
   */
  async enqueue(db: Queryable, ref: string, payload: P, o: { delayMs?: number } = {}): Promise<number> {
    // The no-op update makes RETURNING give the existing job's id too.
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO jobs (queue, ref, payload, run_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       ON CONFLICT (queue, ref) DO UPDATE SET ref = EXCLUDED.ref
       RETURNING id`,
      [this.name, ref, JSON.stringify(payload), secs(o.delayMs ?? 0)],
    );
    return (rows[0] as { id: number }).id;
  }

  /** `enqueue` for many jobs in one statement (a campaign's recipients): refs already queued are skipped. */
  async enqueueAll(db: Queryable, jobs: readonly { ref: string; payload: P }[]): Promise<void> {
    if (jobs.length === 0) return;
    await db.query(
      `INSERT INTO jobs (queue, ref, payload) SELECT $1, j.ref, j.payload FROM unnest($2::text[], $3::jsonb[]) AS j(ref, payload)
       ON CONFLICT (queue, ref) DO NOTHING`,
      [this.name, jobs.map((j) => j.ref), jobs.map((j) => JSON.stringify(j.payload))],
    );
  }

  /** Leases up to `limit` due jobs for `leaseMs`, oldest due first. */
  async claim(limit: number, leaseMs: number): Promise<Job<P>[]> {
    const { rows } = await this.pool.query<{ id: number; ref: string; payload: P; attempts: number; created_at: Date }>(
      `UPDATE jobs SET lease_until = now() + make_interval(secs => $3), attempts = attempts + 1
        WHERE id IN (
          SELECT id FROM jobs
           WHERE queue = $1 AND state = 'pending' AND run_at <= now()
             AND (lease_until IS NULL OR lease_until < now())
           ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING id, ref, payload, attempts, created_at`,
      [this.name, limit, secs(leaseMs)],
    );
    return rows.map((r) => ({ id: r.id, ref: r.ref, payload: r.payload, attempts: r.attempts, createdAt: r.created_at })).sort((a, b) => a.id - b.id);
  }

  async complete(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(
      `UPDATE jobs SET state = 'done', finished_at = now(), lease_until = NULL WHERE id = ANY($1::bigint[]) AND state = 'pending'`,
      [ids],
    );
  }

  /** Due again at once, without waiting out the lease: the attempt is known to be lost. */
  async release(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(`UPDATE jobs SET lease_until = NULL, run_at = now() WHERE id = ANY($1::bigint[]) AND state = 'pending'`, [ids]);
  }

  /**
   * Due again after each job's `delayMs`, its lease given up, and not as a failure: the attempt
   * count starts over. For a long-lived job that has done what there was to do for now (a webhook
   * stream that caught up with its room, or waits for its receiver's next retry). Inside the
   * caller's transaction when `db` is one, to decide it under a lock of the caller's.
   */
  async postpone(db: Queryable, items: readonly { id: number; delayMs: number }[]): Promise<void> {
    if (items.length === 0) return;
    await db.query(
      `UPDATE jobs j SET run_at = now() + make_interval(secs => p.delay), lease_until = NULL, attempts = 0
        FROM unnest($1::bigint[], $2::float8[]) AS p(id, delay)
       WHERE j.id = p.id AND j.state = 'pending'`,
      [items.map((i) => i.id), items.map((i) => secs(Math.max(0, i.delayMs)))],
    );
  }

  /**
   * Makes the pending jobs of these refs due now, inside the caller's transaction when `db` is one.
   * A job someone holds stays theirs until its lease ends or they settle it; with `preempt`, its
   * lease ends now: for a change that makes the holder's work moot (and that the holder is sure
   * to notice, e.g. by a fencing token, before it does anything that counts).
   */
  async wake(db: Queryable, refs: readonly string[], o: { preempt?: boolean } = {}): Promise<void> {
    if (refs.length === 0) return;
    await db.query(
      o.preempt
        ? `UPDATE jobs SET run_at = least(run_at, now()), lease_until = NULL WHERE queue = $1 AND ref = ANY($2::text[]) AND state = 'pending'`
        : `UPDATE jobs SET run_at = now() WHERE queue = $1 AND ref = ANY($2::text[]) AND state = 'pending' AND run_at > now()`,
      [this.name, refs],
    );
  }

  /** Holds the jobs' leases for another `leaseMs` from now (never shortens one). */
  async renew(ids: readonly number[], leaseMs: number): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(
      `UPDATE jobs SET lease_until = greatest(lease_until, now() + make_interval(secs => $2))
        WHERE id = ANY($1::bigint[]) AND state = 'pending'`,
      [ids, secs(leaseMs)],
    );
  }

  /**
   * Records failed attempts: each job is due again after the schedule's delay for its attempt
   * count, or fails for good when the schedule says stop. Resolves to the ids that failed.
   */
  async retry(failures: readonly JobFailure[], schedule: RetrySchedule): Promise<number[]> {
    if (failures.length === 0) return [];
    const delays = failures.map((f) => schedule(f.attempts));
    await this.pool.query(
      `UPDATE jobs j SET
         state = CASE WHEN f.delay IS NULL THEN 'failed' ELSE 'pending' END,
         finished_at = CASE WHEN f.delay IS NULL THEN now() END,
         run_at = CASE WHEN f.delay IS NULL THEN j.run_at ELSE now() + make_interval(secs => f.delay) END,
         lease_until = NULL,
         last_error = f.error
        FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS f(id, error, delay)
       WHERE j.id = f.id AND j.state = 'pending'`,
      [failures.map((f) => f.id), failures.map((f) => f.error.slice(0, 2000)), delays.map((d) => (d === null ? null : secs(d)))],
    );
    return failures.filter((_f, i) => delays[i] === null).map((f) => f.id);
  }

  /**
   * Finishes jobs with how each ended in the queue's own words (`outcome`, e.g. 'sent',
   * 'suppressed') and the far side's last answer, kept for operators and progress reports.
   */
  async settle(items: readonly { id: number; state: 'done' | 'failed'; outcome: string; answer?: string }[]): Promise<void> {
    if (items.length === 0) return;
    await this.pool.query(
      `UPDATE jobs j SET state = s.state, finished_at = now(), lease_until = NULL, outcome = s.outcome, answer = s.answer
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS s(id, state, outcome, answer)
       WHERE j.id = s.id AND j.state = 'pending'`,
      [items.map((i) => i.id), items.map((i) => i.state), items.map((i) => i.outcome), items.map((i) => i.answer?.slice(0, 2000) ?? null)],
    );
  }

  /** Fails jobs for good: retrying could not help (a permanent refusal, a job about nothing). */
  async fail(failures: readonly Pick<JobFailure, 'id' | 'error'>[]): Promise<void> {
    await this.retry(
      failures.map((f) => ({ ...f, attempts: 0 })),
      () => null,
    );
  }

  async stats(): Promise<QueueStats> {
    const { rows } = await this.pool.query<QueueStats>(
      // Each count reads its partial index (migration 005), not the hour of finished jobs kept.
      `SELECT (SELECT count(*) FROM jobs WHERE queue = $1 AND state = 'pending')::int AS pending,
              (SELECT count(*) FROM jobs WHERE queue = $1 AND state = 'failed')::int AS failed,
              coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM jobs WHERE queue = $1 AND state = 'pending'), 0)::float8
                AS "oldestPendingSeconds"`,
      [this.name],
    );
    return rows[0] as QueueStats;
  }

  /** The newest jobs that failed for good, with why: for operators. */
  async failed(limit: number): Promise<(Job<P> & { lastError: string | null; finishedAt: string })[]> {
    const { rows } = await this.pool.query<{ id: number; ref: string; payload: P; attempts: number; created_at: Date; last_error: string | null; finished_at: Date }>(
      `SELECT id, ref, payload, attempts, created_at, last_error, finished_at FROM jobs
        WHERE queue = $1 AND state = 'failed' ORDER BY finished_at DESC LIMIT $2`,
      [this.name, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      ref: r.ref,
      payload: r.payload,
      attempts: r.attempts,
      createdAt: r.created_at,
      lastError: r.last_error,
      finishedAt: r.finished_at.toISOString(),
    }));
  }

  /** Deletes done jobs finished more than `keep.doneMs` ago and failed ones after `keep.failedMs`; resolves to how many. */
  async prune(keep: { doneMs: number; failedMs: number }): Promise<number> {
    const res = await this.pool.query(
      `DELETE FROM jobs WHERE queue = $1 AND state <> 'pending'
          AND finished_at < now() - make_interval(secs => CASE WHEN state = 'done' THEN $2::float8 ELSE $3::float8 END)`,
      [this.name, secs(keep.doneMs), secs(keep.failedMs)],
    );
    return res.rowCount ?? 0;
  }
}
