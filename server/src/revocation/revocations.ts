/**
 * Revocation of live broker connections: after a logout, a password change or the end of a
 * membership, the user's STOMP connections are closed, so nothing opened before keeps
 * receiving or adds subscriptions.
 *
 * A request is written to Redis (a sorted set of jobs by due time) after the database change
 * and before the API answers, and every app server sweeps due jobs: a close that fails (broker
 * node down, management API slow) stays in the set and is retried by whichever server sweeps
 * next, and a server that dies mid-way loses nothing. A job is claimed by moving its due time
 * one lease ahead, so two servers never work the same job at once, and a crashed claimer's job
 * falls due again after the lease.
 *
 * Each request makes two jobs: one due at once, and one due once RabbitMQ's authorization
 * cache (rabbitmq_auth_backend_cache) has forgotten every decision made before the change.
 * Until then a connection opened meanwhile (a client reconnecting at once, or a CONNECT that was
 * in flight) may still be allowed a subscription from the cache; the second close ends it, and
 * from then on every SUBSCRIBE reaches broker-auth and is refused (which closes the connection).
 */
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Redis } from '../redis';
import type { BrokerAdmin } from './broker-admin';

/** Keep equal to `auth_cache.cache_ttl` in rabbitmq/rabbitmq.conf.template (a test checks). */
export const BROKER_AUTHZ_CACHE_MS = 5000;
/** The second close comes this long after the cache expiry, for clock and request latency. */
const AFTER_CACHE_MARGIN_MS = 1000;
/** A claimed job not finished within this is due again (a failed close is retried after it). */
const LEASE_MS = 2000;
const SWEEP_INTERVAL_MS = 500;
const JOBS_PER_SWEEP = 50;

export type RevocationReason = 'logout' | 'password_changed' | 'removed_from_room' | 'left_room';


// Both jobs of one request, timed by Redis's clock so every app server agrees on "due".
const REQUEST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1] .. ' now')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1] .. ' after_cache')
return now
`;

// Claims up to ARGV[2] due jobs by moving them one lease ahead; returns the lease and the jobs.
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local lease = now + tonumber(ARGV[1])
for _, job in ipairs(due) do redis.call('ZADD', KEYS[1], lease, job) end
return {tostring(lease), due}
`;

// Removes a finished job unless it was requested again meanwhile (its due time moved).
const DONE = `
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '-1') == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`;

export class Revocations {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly admin: BrokerAdmin,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    /** The Redis sorted set of jobs; every app server shares the default one. */
    private readonly dueKey = 'rc:revoke:due',
  ) {}

  /**
   * Records that `userId`'s broker connections must close, then starts on it at once. Resolves
   * once the request is stored in Redis, not when the connections are closed.
   */
  async request(userId: string, reason: RevocationReason): Promise<void> {
    await this.redis.eval(REQUEST, 1, this.dueKey, `${userId} ${reason}`, BROKER_AUTHZ_CACHE_MS + AFTER_CACHE_MARGIN_MS);
    this.sweepSoon();
  }

  /** Sweeps due jobs every half second until `stop`; says loudly at once if closing cannot work. */
  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.sweepSoon(), SWEEP_INTERVAL_MS);
    this.admin.canCloseConnections().then(
      (can) => {
        if (!can) this.logger.error('the broker user lacks the administrator tag: revoked broker connections cannot be closed');
      },
      (err: unknown) => this.logger.warn({ err: (err as Error).message }, 'could not check the broker user (management API); revocations will be retried'),
    );
  }

  /** Stops sweeping; jobs still due stay in Redis for the other app servers (or the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.sweeping;
  }

  /** Starts a sweep unless one is running (which will see the new job or leave it due for the next). */
  private sweepSoon(): void {
    if (this.sweeping || this.stopped) return;
    this.sweeping = this.sweep()
      .catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'revocation sweep failed; retrying'))
      .finally(() => {
        this.sweeping = null;
      });
  }

  private async sweep(): Promise<void> {
    const [lease, jobs] = (await this.redis.eval(CLAIM, 1, this.dueKey, LEASE_MS, JOBS_PER_SWEEP)) as [string, string[]];
    await Promise.all(jobs.map((job) => this.run(job, lease)));
  }

  private async run(job: string, lease: string): Promise<void> {
    const [userId = '', reason = '', pass = ''] = job.split(' ');
    try {
      const closed = await this.admin.closeConnectionsOf(userId, `roomcast: ${reason.replaceAll('_', ' ')}`);
      await this.redis.eval(DONE, 1, this.dueKey, job, lease);
      if (closed > 0) {
        this.metrics.brokerConnectionsRevoked.inc({ reason }, closed);
        this.logger.info({ userId, reason, pass, closed }, 'closed broker connections');
      }
    } catch (err) {
      // The job keeps its lease as due time: any app server retries it once the lease ends.
      this.metrics.revocationFailures.inc();
      this.logger.warn({ userId, reason, pass, err: (err as Error).message, retryInMs: LEASE_MS }, 'closing broker connections failed; will retry');
    }
  }
}
