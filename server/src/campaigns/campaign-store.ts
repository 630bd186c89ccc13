/**
 * Every SQL statement of campaigns (migration 010) except the recipients' jobs' own, which go
 * through `JobQueue` (work/). A recipient's state is read from its job: pending and leased is
 * `sending`, pending and tried is `deferred`, done or failed with its outcome is final.
 */
import type { CampaignState, RecipientState } from '../../../shared/protocol/campaigns';
import type { Pool, PoolClient } from '../db/pool';
import { JobQueue } from '../work/job-queue';

/** Rooms a campaign may address at most (the table's check): "all rooms" beyond this is refused, not cut short. */
export const MAX_ALL_ROOMS = 1000;

export const campaignQueueName = (campaignId: string): string => `campaign:${campaignId}`;

/** A recipient's job: who, and the room they are mailed as a member of. */
export interface RecipientJob {
  userId: string;
  roomId: string;
}

export type Counts = Record<RecipientState, number>;

export interface StopPoint {
  counts: Counts;
  nextRecipientId: string | null;
}

export interface Campaign {
  id: string;
  createdBy: string | null;
  roomIds: string[];
  subject: string;
  text: string;
  state: CampaignState;
  pausedBy: 'user' | 'gate' | null;
  pauseReason: string | null;
  pausedAt: Date | null;
  stopPoint: StopPoint | null;
  gateNote: string | null;
  recipients: number;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What a sender needs to mail one recipient, read when it sends (an address or a choice may have changed since the campaign began). */
export interface RecipientNow {
  userId: string;
  name: string;
  roomId: string;
  roomName: string;
  role: 'instructor' | 'learner';
  /** Null: no verified address any more. */
  email: string | null;
  suppressed: boolean;
  /** The member turned mail from this room off, or left it. */
  optedOut: boolean;
}

type Db = Pick<Pool | PoolClient, 'query'>;

interface CampaignRow {
  id: string;
  created_by: string | null;
  room_ids: string[];
  subject: string;
  body: string;
  state: CampaignState;
  paused_by: 'user' | 'gate' | null;
  pause_reason: string | null;
  paused_at: Date | null;
  stop_point: StopPoint | null;
  gate_note: string | null;
  recipients: number;
  created_at: Date;
  finished_at: Date | null;
}

const toCampaign = (r: CampaignRow): Campaign => ({
  id: r.id,
  createdBy: r.created_by,
  roomIds: r.room_ids,
  subject: r.subject,
  text: r.body,
  state: r.state,
  pausedBy: r.paused_by,
  pauseReason: r.pause_reason,
  pausedAt: r.paused_at,
  stopPoint: r.stop_point,
  gateNote: r.gate_note,
  recipients: r.recipients,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});

/** A pending job's state in recipient terms; the final ones come from `outcome`. */
const RECIPIENT_STATE_SQL = `CASE
    WHEN state = 'pending' AND lease_until > now() THEN 'sending'
    WHEN state = 'pending' AND last_error IS NOT NULL THEN 'deferred'
    WHEN state = 'pending' THEN 'queued'
    WHEN state = 'failed' THEN 'failed'
    ELSE coalesce(outcome, 'sent') END`;

const emptyCounts = (): Counts => ({ queued: 0, sending: 0, deferred: 0, sent: 0, failed: 0, suppressed: 0, cancelled: 0 });

export class CampaignStore {
  constructor(private readonly pool: Pool) {}

  queue(campaignId: string): JobQueue<RecipientJob> {
    return new JobQueue<RecipientJob>(this.pool, campaignQueueName(campaignId));
  }

  /**
   * Creates the campaign and one job per recipient in one transaction: every member of the rooms
   * with a verified address except the sender, once each (through the first of the rooms they
   * are in). Later joins do not change a campaign under way; who has opted out or bounced since
   * is found when their mail is due. Under a lock per sender: the same `idempotencyKey` again
   * returns the first campaign (`replayed`); a sender with `maxActive` running or paused gets
   * `too_many`; nobody to mail is `no_recipients`, and nothing is written.
   */
  async create(c: { createdBy: string | null; roomIds: string[]; subject: string; text: string; idempotencyKey?: string; maxActive?: number }): Promise<
    { campaign: Campaign; replayed: boolean } | 'too_many' | 'no_recipients'
  > {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('campaigns:' || coalesce($1::text, 'operators')))`, [c.createdBy]);
      if (c.idempotencyKey !== undefined) {
        const { rows } = await client.query<CampaignRow>('SELECT * FROM campaigns WHERE created_by IS NOT DISTINCT FROM $1 AND idempotency_key = $2', [c.createdBy, c.idempotencyKey]);
        if (rows[0]) {
          await client.query('ROLLBACK');
          return { campaign: toCampaign(rows[0]), replayed: true };
        }
      }
      if (c.maxActive !== undefined && c.createdBy !== null) {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM campaigns WHERE created_by = $1 AND state IN ('running', 'paused')`, [c.createdBy]);
        if ((rows[0] as { n: number }).n >= c.maxActive) {
          await client.query('ROLLBACK');
          return 'too_many';
        }
      }
      const { rows: recipients } = await client.query<{ user_id: string; room_id: string }>(
        `SELECT DISTINCT ON (u.id) u.id AS user_id, ms.room_id
           FROM memberships ms JOIN users u ON u.id = ms.user_id
          WHERE ms.room_id = ANY($1::uuid[]) AND u.email IS NOT NULL AND u.email_verified_at IS NOT NULL
            AND u.id IS DISTINCT FROM $2::uuid
          ORDER BY u.id, array_position($1::uuid[], ms.room_id)`,
        [c.roomIds, c.createdBy],
      );
      if (recipients.length === 0) {
        await client.query('ROLLBACK');
        return 'no_recipients';
      }
      const { rows } = await client.query<CampaignRow>(
        `INSERT INTO campaigns (created_by, room_ids, subject, body, recipients, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [c.createdBy, c.roomIds, c.subject, c.text, recipients.length, c.idempotencyKey ?? null],
      );
      const campaign = toCampaign(rows[0] as CampaignRow);
      await this.queue(campaign.id).enqueueAll(
        client,
        recipients.map((r) => ({ ref: r.user_id, payload: { userId: r.user_id, roomId: r.room_id } })),
      );
      await client.query('COMMIT');
      return { campaign, replayed: false };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async get(id: string): Promise<Campaign | null> {
    const { rows } = await this.pool.query<CampaignRow>('SELECT * FROM campaigns WHERE id = $1', [id]);
    return rows[0] ? toCampaign(rows[0]) : null;
  }

  /** Newest first, of one room or all: every campaign (operators), or those a user can steer, as an instructor of every one of its rooms. */
  async list(viewer: { userId: string } | 'all', o: { limit: number; roomId?: string }): Promise<Campaign[]> {
    const { rows } = await this.pool.query<CampaignRow>(
      `SELECT c.* FROM campaigns c
        WHERE ($2::uuid IS NULL OR $2::uuid = ANY(c.room_ids))
          AND ($1::uuid IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(c.room_ids) AS r(id) WHERE NOT EXISTS (
                SELECT 1 FROM memberships ms WHERE ms.user_id = $1 AND ms.role = 'instructor' AND ms.room_id = r.id)))
        ORDER BY c.created_at DESC LIMIT $3`,
      [viewer === 'all' ? null : viewer.userId, o.roomId ?? null, o.limit],
    );
    return rows.map(toCampaign);
  }

  /** Campaigns a runner has work in: running ones, and those the gate paused (to probe and resume). */
  async active(): Promise<Campaign[]> {
    const { rows } = await this.pool.query<CampaignRow>(
      `SELECT * FROM campaigns WHERE state = 'running' OR (state = 'paused' AND paused_by = 'gate') ORDER BY created_at`,
    );
    return rows.map(toCampaign);
  }

  async stateOf(id: string): Promise<{ state: CampaignState; pausedBy: 'user' | 'gate' | null } | null> {
    const { rows } = await this.pool.query<{ state: CampaignState; paused_by: 'user' | 'gate' | null }>('SELECT state, paused_by FROM campaigns WHERE id = $1', [id]);
    return rows[0] ? { state: rows[0].state, pausedBy: rows[0].paused_by } : null;
  }

  /** Which of these campaigns have a recipient due now (not leased, not waiting for a retry). */
  async withDueRecipients(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<{ queue: string }>(
      `SELECT DISTINCT queue FROM jobs
        WHERE queue = ANY($1::text[]) AND state = 'pending' AND run_at <= now() AND (lease_until IS NULL OR lease_until < now())`,
      [ids.map(campaignQueueName)],
    );
    return rows.map((r) => r.queue.slice('campaign:'.length));
  }

  /**
   * Ends as cancelled the pending recipients of cancelled campaigns that nobody holds: a
   * deferral recorded after the cancel, or a dead runner's lease. Resolves to how many.
   */
  async sweepCancelled(): Promise<number> {
    const res = await this.pool.query(
      `UPDATE jobs SET state = 'done', finished_at = now(), outcome = 'cancelled', answer = 'the campaign was cancelled'
        WHERE queue IN (SELECT 'campaign:' || id FROM campaigns WHERE state = 'cancelled')
          AND state = 'pending' AND (lease_until IS NULL OR lease_until < now())`,
    );
    return res.rowCount ?? 0;
  }

  async counts(id: string, db: Db = this.pool): Promise<Counts> {
    const { rows } = await db.query<{ s: RecipientState; n: number }>(
      `SELECT ${RECIPIENT_STATE_SQL} AS s, count(*)::int AS n FROM jobs WHERE queue = $1 GROUP BY 1`,
      [campaignQueueName(id)],
    );
    const counts = emptyCounts();
    for (const r of rows) counts[r.s] = r.n;
    return counts;
  }

  /** Mails of the campaign the relay accepted in the last minute. */
  async sentLastMinute(id: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jobs WHERE queue = $1 AND state = 'done' AND outcome = 'sent' AND finished_at > now() - interval '1 minute'`,
      [campaignQueueName(id)],
    );
    return (rows[0] as { n: number }).n;
  }

  async recipients(id: string, o: { state?: RecipientState; limit: number }): Promise<
    { userId: string; name: string; roomId: string; state: RecipientState; attempts: number; answer: string | null; updatedAt: Date | null }[]
  > {
    const { rows } = await this.pool.query<{ user_id: string; name: string; room_id: string; s: RecipientState; attempts: number; answer: string | null; finished_at: Date | null }>(
      `SELECT j.ref AS user_id, u.display_name AS name, j.payload->>'roomId' AS room_id, j.s, j.attempts, coalesce(j.answer, j.last_error) AS answer, j.finished_at
         FROM (SELECT *, ${RECIPIENT_STATE_SQL} AS s FROM jobs WHERE queue = $1) j JOIN users u ON u.id = j.ref::uuid
        WHERE $2::text IS NULL OR j.s = $2
        ORDER BY j.id LIMIT $3`,
      [campaignQueueName(id), o.state ?? null, o.limit],
    );
    return rows.map((r) => ({ userId: r.user_id, name: r.name, roomId: r.room_id, state: r.s, attempts: r.attempts, answer: r.answer, updatedAt: r.finished_at }));
  }

  /** The recipients of these jobs as they are now: address, suppression, and whether they still take this room's mail. */
  async recipientsNow(jobs: readonly RecipientJob[]): Promise<Map<string, RecipientNow>> {
    const { rows } = await this.pool.query<{
      user_id: string;
      name: string;
      room_id: string;
      room_name: string;
      role: 'instructor' | 'learner' | null;
      email: string | null;
      suppressed: boolean;
      mode: string | null;
    }>(
      `SELECT u.id AS user_id, u.display_name AS name, r.id AS room_id, r.name AS room_name, ms.role,
              CASE WHEN u.email_verified_at IS NOT NULL THEN u.email END AS email,
              EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.email = lower(u.email)) AS suppressed, p.mode
         FROM unnest($1::uuid[], $2::uuid[]) AS j(user_id, room_id)
         JOIN users u ON u.id = j.user_id JOIN rooms r ON r.id = j.room_id
         LEFT JOIN memberships ms ON ms.user_id = j.user_id AND ms.room_id = j.room_id
         LEFT JOIN notification_prefs p ON p.user_id = j.user_id AND p.room_id = j.room_id`,
      [jobs.map((j) => j.userId), jobs.map((j) => j.roomId)],
    );
    return new Map(
      rows.map((r) => [
        r.user_id,
        {
          userId: r.user_id,
          name: r.name,
          roomId: r.room_id,
          roomName: r.room_name,
          role: r.role ?? 'learner',
          email: r.email,
          suppressed: r.suppressed,
          optedOut: r.role === null || r.mode === 'off',
        },
      ]),
    );
  }

  /** Which of these rooms exist ('all': every room, oldest first, as many as a campaign may address). */
  async roomIds(which: readonly string[] | 'all'): Promise<string[]> {
    const { rows } =
      which === 'all'
        ? await this.pool.query<{ id: string }>('SELECT id FROM rooms ORDER BY created_at LIMIT $1', [MAX_ALL_ROOMS + 1])
        : await this.pool.query<{ id: string }>('SELECT id FROM rooms WHERE id = ANY($1::uuid[])', [which]);
    return rows.map((r) => r.id);
  }

  async teachesAll(userId: string, roomIds: readonly string[]): Promise<boolean> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM memberships WHERE user_id = $1 AND role = 'instructor' AND room_id = ANY($2::uuid[])`,
      [userId, roomIds],
    );
    return (rows[0] as { n: number }).n === new Set(roomIds).size;
  }



  /** The display name of a campaign's sender; null for the operators. */
  async senderName(userId: string | null): Promise<string | null> {
    if (userId === null) return null;
    const { rows } = await this.pool.query<{ name: string }>('SELECT display_name AS name FROM users WHERE id = $1', [userId]);
    return rows[0]?.name ?? null;
  }

  /**
   * Moves a campaign between states when it is in one of `from`; resolves to the campaign after
   * the change, or null when it was in another state (the caller says why).
   */
  async transition(
    id: string,
    from: readonly CampaignState[],
    to: { state: 'running' } | { state: 'paused'; by: 'user' | 'gate'; reason: string } | { state: 'cancelled'; reason?: string } | { state: 'done' },
    fromPausedBy?: 'user' | 'gate',
  ): Promise<Campaign | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows: locked } = await client.query<{ state: CampaignState; paused_by: string | null }>('SELECT state, paused_by FROM campaigns WHERE id = $1 FOR UPDATE', [id]);
      const now = locked[0];
      if (!now || !from.includes(now.state) || (fromPausedBy !== undefined && now.paused_by !== fromPausedBy)) {
        await client.query('ROLLBACK');
        return null;
      }
      const queue = campaignQueueName(id);
      if (to.state === 'done') {
        const { rows } = await client.query('SELECT 1 FROM jobs WHERE queue = $1 AND state = $2 LIMIT 1', [queue, 'pending']);
        if (rows.length > 0) {
          await client.query('ROLLBACK');
          return null;
        }
      }
      let stopPoint: StopPoint | null = null;
      if (to.state === 'paused') {
        const { rows } = await client.query<{ ref: string }>(
          `SELECT ref FROM jobs WHERE queue = $1 AND state = 'pending' ORDER BY run_at, id LIMIT 1`,
          [queue],
        );
        stopPoint = { counts: await this.counts(id, client), nextRecipientId: rows[0]?.ref ?? null };
      }
      if (to.state === 'cancelled') {
        // Recipients not being sent right now end here; those a sender holds are ended by it (it sees the state before sending).
        await client.query(
          `UPDATE jobs SET state = 'done', finished_at = now(), outcome = 'cancelled', answer = 'the campaign was cancelled'
            WHERE queue = $1 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= now())`,
          [queue],
        );
      }
      const { rows } = await client.query<CampaignRow>(
        `UPDATE campaigns SET state = $2, updated_at = now(),
                paused_by = $3, pause_reason = $4, paused_at = CASE WHEN $2 = 'paused' THEN now() END,
                stop_point = CASE WHEN $2 = 'paused' THEN $5::jsonb ELSE stop_point END,
                gate_note = NULL,
                finished_at = CASE WHEN $2 IN ('cancelled', 'done') THEN now() END
          WHERE id = $1 RETURNING *`,
        [id, to.state, to.state === 'paused' ? to.by : null, to.state === 'paused' || to.state === 'cancelled' ? (to.reason ?? null) : null, stopPoint === null ? null : JSON.stringify(stopPoint)],
      );
      await client.query('COMMIT');
      return toCampaign(rows[0] as CampaignRow);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** What the gate says while it holds sending back (null: mail flows); written only when it changes. */
  async noteGate(ids: readonly string[], note: string | null): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(`UPDATE campaigns SET gate_note = $2 WHERE id = ANY($1::uuid[]) AND gate_note IS DISTINCT FROM $2`, [ids, note]);
  }
}
