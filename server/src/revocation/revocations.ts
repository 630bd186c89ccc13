/**
 * Revocation of live broker connections: after a logout, a password change or the end of a
 * membership, the user's STOMP connections are closed, so nothing opened before keeps
 * receiving or adds subscriptions.
 *
 * A request is two leased jobs (queue 'revoke', docs/leased-work.md), written after the
 * database change and before the API answers; every app server runs a worker on the queue: a
 * close that fails (broker node down, management API slow) is retried by whichever server
 * claims it next, and a server that dies mid-way loses nothing.
 *
 * Each request makes two jobs: one due at once, and one due once RabbitMQ's authorization
 * cache (rabbitmq_auth_backend_cache) has forgotten every decision made before the change.
 * Until then a connection opened meanwhile (a client reconnecting at once, or a CONNECT that was
 * in flight) may still be allowed a subscription from the cache; the second close ends it, and
 * from then on every SUBSCRIBE reaches broker-auth and is refused (which closes the connection).
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Job } from '../work/job-queue';
import { JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { Worker, type JobOutcome } from '../work/worker';
import type { BrokerAdmin } from './broker-admin';

/** Keep equal to `auth_cache.cache_ttl` in rabbitmq/rabbitmq.conf.template (a test checks). */
export const BROKER_AUTHZ_CACHE_MS = 5000;
/** The second close comes this long after the cache expiry, for clock and request latency. */
const AFTER_CACHE_MARGIN_MS = 1000;
/** A close that failed is tried again after this, then less often; it is never given up. */
const RETRY = exponentialBackoff({ firstMs: 1000, maxMs: 10_000 });
/** Longer than a close can take (the management API calls have timeouts of their own). */
const LEASE_MS = 15_000;
const INTERVAL_MS = 500;
const JOBS_PER_PASS = 50;

export type RevocationReason = 'logout' | 'password_changed' | 'removed_from_room' | 'left_room';

interface RevocationJob {
  userId: string;
  reason: RevocationReason;
  pass: 'now' | 'after_cache';
}

export class Revocations {
  private readonly jobs: JobQueue<RevocationJob>;
  private readonly worker: Worker<RevocationJob>;

  constructor(
    private readonly pool: Pool,
    private readonly admin: BrokerAdmin,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    /** The job queue; every app server shares the default one. */
    queue = 'revoke',
  ) {
    this.jobs = new JobQueue(pool, queue);
    this.worker = new Worker({
      queue: this.jobs,
      schedule: RETRY,
      batch: JOBS_PER_PASS,
      leaseMs: LEASE_MS,
      intervalMs: INTERVAL_MS,
      logger,
      handle: (jobs) => Promise.all(jobs.map((job) => this.run(job))),
    });
  }

  /** Jobs not finished yet: for tests and operators. */
  async pending(): Promise<number> {
    return (await this.jobs.stats()).pending;
  }

  /**
   * Records that `userId`'s broker connections must close, then starts on it at once. Resolves
   * once the request is stored, not when the connections are closed.
   */
  async request(userId: string, reason: RevocationReason): Promise<void> {
    // Each request its own pair of jobs: a request made while an earlier one's close is running
    // must not be taken for done when that close finishes.
    const request = randomUUID();
    await Promise.all([
      this.jobs.enqueue(this.pool, `${userId}:${request}:now`, { userId, reason, pass: 'now' }),
      this.jobs.enqueue(this.pool, `${userId}:${request}:after_cache`, { userId, reason, pass: 'after_cache' }, { delayMs: BROKER_AUTHZ_CACHE_MS + AFTER_CACHE_MARGIN_MS }),
    ]);
    this.worker.wake();
  }

  /** Starts this server's worker; says loudly at once if closing cannot work. */
  start(): void {
    this.worker.start();
    this.admin.canCloseConnections().then(
      (can) => {
        if (!can) this.logger.error('the broker user lacks the administrator tag: revoked broker connections cannot be closed');
      },
      (err: unknown) => this.logger.warn({ err: (err as Error).message }, 'could not check the broker user (management API); revocations will be retried'),
    );
  }

  /** Stops the worker; jobs still due stay for the other app servers (or the next start). */
  stop(): Promise<void> {
    return this.worker.stop();
  }

  private async run(job: Job<RevocationJob>): Promise<JobOutcome> {
    const { userId, reason, pass } = job.payload;
    try {
      const closed = await this.admin.closeConnectionsOf(userId, `roomcast: ${reason.replaceAll('_', ' ')}`);
      if (closed > 0) {
        this.metrics.brokerConnectionsRevoked.inc({ reason }, closed);
        this.logger.info({ userId, reason, pass, closed }, 'closed broker connections');
      }
      return { id: job.id, outcome: 'done' };
    } catch (err) {
      this.metrics.revocationFailures.inc();
      this.logger.warn({ userId, reason, pass, err: (err as Error).message, attempt: job.attempts }, 'closing broker connections failed; will retry');
      return { id: job.id, outcome: 'retry', error: (err as Error).message };
    }
  }
}
