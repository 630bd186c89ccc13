/**
 * The send-rate ceilings of bulk mail, per second and per hour, counted in Postgres (table
 * `mail_rate`, migration 010) rather than in memory: a restarted server, or a second one, sees
 * what was already sent this hour. Sending takes places first (`reserve`), so two servers never
 * both spend the last one; places taken and then not used are given back.
 *
 * The hour is a sliding window of the last 3600 seconds of the database's clock.
 */
import type { Pool } from '../db/pool';

export interface RateLimits {
  perSecond: number;
  perHour: number;
}

export interface Reservation {
  granted: number;
  /** The second the places were counted in (to give back unused ones); null when none were granted. */
  at: Date | null;
  /** With nothing granted: how long until a place frees, and which ceiling is reached. */
  retryAfterMs: number;
  limitedBy: 'second' | 'hour' | null;
}

/** Any fixed number, the same for every server: serializes reservations, nothing else. */
const LOCK_ID = 7_310_015;
/** Rows older than the window (and a margin) are deleted now and then. */
const KEEP_SECONDS = 2 * 3600;

export class RateCeiling {
  private lastPrune = 0;

  constructor(
    private readonly pool: Pool,
    readonly limits: RateLimits,
  ) {}

  /** Takes up to `wanted` places for mails to be handed to the relay now. */
  async reserve(wanted: number): Promise<Reservation> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_ID]);
      const { rows } = await client.query<{ this_second: number; this_hour: number; next_second_ms: number; hour_frees_ms: number | null }>(
        `SELECT coalesce(sum(sent) FILTER (WHERE at = date_trunc('second', clock_timestamp())), 0)::int AS this_second,
                coalesce(sum(sent), 0)::int AS this_hour,
                (1000 - extract(milliseconds FROM clock_timestamp())::numeric % 1000)::float8 AS next_second_ms,
                extract(epoch FROM min(at) FILTER (WHERE sent > 0) + interval '1 hour' - clock_timestamp())::float8 * 1000 AS hour_frees_ms
           FROM mail_rate WHERE at > clock_timestamp() - interval '1 hour'`,
      );
      const r = rows[0] as { this_second: number; this_hour: number; next_second_ms: number; hour_frees_ms: number | null };
      const hourLeft = this.limits.perHour - r.this_hour;
      const secondLeft = this.limits.perSecond - r.this_second;
      const granted = Math.max(0, Math.min(wanted, hourLeft, secondLeft));
      let at: Date | null = null;
      if (granted > 0) {
        const res = await client.query<{ at: Date }>(
          `INSERT INTO mail_rate (at, sent) VALUES (date_trunc('second', clock_timestamp()), $1)
           ON CONFLICT (at) DO UPDATE SET sent = mail_rate.sent + EXCLUDED.sent RETURNING at`,
          [granted],
        );
        at = (res.rows[0] as { at: Date }).at;
      }
      await client.query('COMMIT');
      await this.pruneNow();
      if (granted > 0) return { granted, at, retryAfterMs: 0, limitedBy: null };
      if (hourLeft <= 0) return { granted: 0, at, retryAfterMs: Math.max(1, Math.ceil(r.hour_frees_ms ?? 1000)), limitedBy: 'hour' };
      return { granted: 0, at, retryAfterMs: Math.max(1, Math.ceil(r.next_second_ms)), limitedBy: 'second' };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Gives back places reserved and not used (fewer recipients were due than reserved). */
  async giveBack(r: Reservation, count: number): Promise<void> {
    if (count <= 0 || r.at === null) return;
    await this.pool.query('UPDATE mail_rate SET sent = greatest(0, sent - $2) WHERE at = $1', [r.at, Math.min(count, r.granted)]);
  }

  private async pruneNow(): Promise<void> {
    if (Date.now() - this.lastPrune < 60_000) return;
    this.lastPrune = Date.now();
    await this.pool.query(`DELETE FROM mail_rate WHERE at < clock_timestamp() - make_interval(secs => $1)`, [KEEP_SECONDS]);
  }
}
