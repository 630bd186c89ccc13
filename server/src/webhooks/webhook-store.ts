/**
 * The webhook tables (migration 009): endpoints, the cursor of each endpoint in its room, and the
 * log of attempts. The only module that writes them.
 *
 * Every cursor write carries the fence its pass took at its start (`beginPass`); a write with an
 * older fence changes nothing and reports `held: false`. A replay, a pause, a resume or a new URL
 * takes a new fence too, so a pass still running stops at its next write instead of moving the
 * cursor past what the instructor just asked for.
 */
import type { EventType, RoomPosition } from '../../../shared/protocol/events';
import { formatPosition } from '../../../shared/protocol/events';
import type { Role } from '../../../shared/protocol/messages';
import type { Pool, PoolClient } from '../db/pool';
import type { DisabledReason, WebhookAttempt, WebhookEndpoint } from './webhook-types';

type Queryable = Pick<Pool | PoolClient, 'query'>;

interface EndpointRow {
  id: string;
  room_id: string;
  owner_id: string;
  url: string;
  event_types: EventType[];
  description: string;
  enabled: boolean;
  disabled_reason: DisabledReason | null;
  disabled_at: Date | null;
  failing_since: Date | null;
  previous_until: Date | null;
  created_at: Date;
  updated_at: Date;
  seq: number;
  n: number;
  attempts: number;
  retry_at: Date | null;
}

const ENDPOINT_COLUMNS = `e.id, e.room_id, e.owner_id, e.url, e.event_types, e.description, e.enabled, e.disabled_reason, e.disabled_at,
  e.failing_since, CASE WHEN e.previous_until > now() THEN e.previous_until END AS previous_until, e.created_at, e.updated_at,
  c.seq, c.n, c.attempts, c.retry_at`;
const ENDPOINT_FROM = `webhook_endpoints e JOIN webhook_cursors c ON c.endpoint_id = e.id AND c.room_id = e.room_id`;

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function toEndpoint(r: EndpointRow): WebhookEndpoint {
  return {
    id: r.id,
    roomId: r.room_id,
    ownerId: r.owner_id,
    url: r.url,
    eventTypes: r.event_types,
    description: r.description,
    enabled: r.enabled,
    disabledReason: r.disabled_reason,
    disabledAt: iso(r.disabled_at),
    failingSince: iso(r.failing_since),
    position: formatPosition({ seq: r.seq, n: r.n }),
    pendingAttempts: r.attempts,
    nextAttemptAt: iso(r.retry_at),
    previousSecretExpiresAt: iso(r.previous_until),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** What a pass needs to deliver: the endpoint as it is now, and its cursor. */
export interface StreamState {
  fence: number;
  position: RoomPosition;
  /** Attempts already made at the event after the cursor. */
  attempts: number;
  /** How long until that event's next attempt is due; 0: now. */
  retryInMs: number;
  target: StreamTarget;
  /** The owner's role in the room now; null: no longer a member. */
  ownerRole: Role | null;
}

/** The endpoint's delivery settings, re-read after every attempt. */
export interface StreamTarget {
  ownerId: string;
  url: string;
  eventTypes: EventType[];
  enabled: boolean;
  /** Newest first: during a rotation's overlap, two. */
  secrets: string[];
  /** The owner's role in the room as this read saw it; null: no longer a member. */
  ownerRole: Role | null;
}

interface TargetRow {
  owner_id: string;
  url: string;
  event_types: EventType[];
  enabled: boolean;
  secret: string;
  previous_live: string | null;
  owner_role: Role | null;
}
// The owner's membership is read with the endpoint every time: a pass stops at its next read once they are not an instructor.
const TARGET_COLUMNS = `e.owner_id, e.url, e.event_types, e.enabled, e.secret, CASE WHEN e.previous_until > now() THEN e.previous_secret END AS previous_live,
  (SELECT m.role FROM memberships m WHERE m.room_id = e.room_id AND m.user_id = e.owner_id) AS owner_role`;
const toTarget = (r: TargetRow): StreamTarget => ({
  ownerId: r.owner_id,
  url: r.url,
  eventTypes: r.event_types,
  enabled: r.enabled,
  secrets: r.previous_live ? [r.secret, r.previous_live] : [r.secret],
  ownerRole: r.owner_role,
});

/** One attempt's record and what it does to the cursor. */
export interface AttemptRecord {
  event: { id: string; type: EventType; position: string };
  attempt: number;
  status: number | null;
  responseMs: number;
  error: string | null;
  outcome: WebhookAttempt['outcome'];
  /** Where the cursor moves (past this event), or null: it stays before it. */
  advanceTo: RoomPosition | null;
  /** Attempts made at the event after the cursor, once this is recorded. */
  cursorAttempts: number;
  /** When the next attempt is due, or null: at once. */
  retryInMs: number | null;
  /** A 2xx ends a run of failures; any failure starts one (or continues it). */
  failing: 'clear' | 'mark';
}

/** What an endpoint's owner is told when it is disabled. */
export interface DisabledNotice {
  endpointId: string;
  roomId: string;
  roomName: string;
  url: string;
  description: string;
  ownerName: string;
  /** Verified and usable, or null: nobody to mail. */
  ownerEmail: string | null;
  failingSince: string | null;
  disabledAt: string;
  lastError: string | null;
}

export class WebhookStore {
  constructor(private readonly pool: Pool) {}

  /** A new endpoint, with its cursor at the room's head: it gets what happens from now on. */
  async create(
    tx: Queryable,
    e: { roomId: string; ownerId: string; url: string; eventTypes: EventType[]; description: string; secret: string },
  ): Promise<WebhookEndpoint> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO webhook_endpoints (room_id, owner_id, url, event_types, description, secret) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [e.roomId, e.ownerId, e.url, e.eventTypes, e.description, e.secret],
    );
    const id = (rows[0] as { id: string }).id;
    await tx.query(`INSERT INTO webhook_cursors (endpoint_id, room_id, seq, n) SELECT $1, r.id, r.last_seq, r.last_event_n FROM rooms r WHERE r.id = $2`, [id, e.roomId]);
    return (await this.get(e.roomId, id, tx)) as WebhookEndpoint;
  }

  /** The room's endpoints, counted under a lock of the room's webhooks held until `tx` ends: two registrations are counted one after the other. */
  async countForUpdate(tx: Queryable, roomId: string): Promise<number> {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || $1::text))`, [roomId]);
    const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_endpoints WHERE room_id = $1', [roomId]);
    return rows[0]?.n ?? 0;
  }

  async list(roomId: string): Promise<WebhookEndpoint[]> {
    const { rows } = await this.pool.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM ${ENDPOINT_FROM} WHERE e.room_id = $1 ORDER BY e.created_at, e.id`, [roomId]);
    return rows.map(toEndpoint);
  }

  async get(roomId: string, id: string, db: Queryable = this.pool): Promise<WebhookEndpoint | null> {
    const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM ${ENDPOINT_FROM} WHERE e.room_id = $1 AND e.id = $2`, [roomId, id]);
    return rows[0] ? toEndpoint(rows[0]) : null;
  }

  /**
   * Changes what was given; a new URL also restarts the schedule of the event waiting for a retry
   * (the old URL's failures say nothing of the new one). Resolves to false for an unknown endpoint.
   */
  async update(tx: Queryable, roomId: string, id: string, patch: { url?: string; eventTypes?: EventType[]; description?: string }): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE webhook_endpoints SET url = coalesce($3, url), event_types = coalesce($4, event_types), description = coalesce($5, description),
              failing_since = CASE WHEN $3::text IS NOT NULL AND $3 <> url THEN NULL ELSE failing_since END, updated_at = now()
        WHERE room_id = $1 AND id = $2`,
      [roomId, id, patch.url ?? null, patch.eventTypes ?? null, patch.description ?? null],
    );
    if (!rowCount) return false;
    if (patch.url !== undefined) await this.restartCursor(tx, id);
    return true;
  }

  /**
   * Locks the endpoint's stream cursor, to be the first lock of a transaction that changes or
   * deletes the endpoint. A delivery records its attempt by updating the cursor and then touching
   * the endpoint (`record`); taking them in the other order (a DELETE cascading to the cursor) let
   * the two wait on each other until Postgres broke the deadlock with a 503.
   */
  async lockStream(tx: Queryable, endpointId: string): Promise<void> {
    await tx.query('SELECT 1 FROM webhook_cursors WHERE endpoint_id = $1 FOR UPDATE', [endpointId]);
  }

  /**
   * Pauses (reason `paused`) or resumes. Resuming clears the failure run and the retry wait, so the
   * event after the cursor goes out at once. An endpoint disabled because its owner left is not
   * resumed (`owner_left`): its URL and secret are the former member's, so it stays off for good.
   */
  async setEnabled(tx: Queryable, roomId: string, id: string, enabled: boolean): Promise<'ok' | 'missing' | 'owner_left'> {
    const { rows } = await tx.query<{ disabled_reason: DisabledReason | null }>(
      'SELECT disabled_reason FROM webhook_endpoints WHERE room_id = $1 AND id = $2 FOR UPDATE',
      [roomId, id],
    );
    const row = rows[0];
    if (!row) return 'missing';
    if (enabled && row.disabled_reason === 'owner_left') return 'owner_left';
    if (enabled) {
      await tx.query(
        `UPDATE webhook_endpoints SET enabled = true, disabled_reason = NULL, disabled_at = NULL, failing_since = NULL, updated_at = now()
          WHERE room_id = $1 AND id = $2`,
        [roomId, id],
      );
    } else {
      await tx.query(
        `UPDATE webhook_endpoints SET enabled = false, disabled_reason = coalesce(disabled_reason, 'paused'), disabled_at = coalesce(disabled_at, now()), updated_at = now()
          WHERE room_id = $1 AND id = $2`,
        [roomId, id],
      );
    }
    await this.restartCursor(tx, id);
    return 'ok';
  }

  /** A new secret; the current one keeps signing until `overlapMs` from now. Resolves to when it stops, or null for an unknown endpoint. */
  async rotate(roomId: string, id: string, secret: string, overlapMs: number): Promise<Date | null> {
    const { rows } = await this.pool.query<{ previous_until: Date }>(
      `UPDATE webhook_endpoints SET previous_secret = secret, previous_until = now() + make_interval(secs => $4), secret = $3, updated_at = now()
        WHERE room_id = $1 AND id = $2 RETURNING previous_until`,
      [roomId, id, secret, overlapMs / 1000],
    );
    return rows[0]?.previous_until ?? null;
  }

  async delete(tx: Queryable, roomId: string, id: string): Promise<boolean> {
    const { rowCount } = await tx.query('DELETE FROM webhook_endpoints WHERE room_id = $1 AND id = $2', [roomId, id]);
    return (rowCount ?? 0) > 0;
  }

  /** Moves the cursor to `to` (back, to deliver again; or ahead, to skip) and restarts the schedule. */
  async moveCursor(tx: Queryable, id: string, to: RoomPosition): Promise<void> {
    await tx.query(`UPDATE webhook_cursors SET seq = $2, n = $3, attempts = 0, retry_at = NULL, fence = fence + 1 WHERE endpoint_id = $1`, [id, to.seq, to.n]);
  }

  private async restartCursor(tx: Queryable, id: string): Promise<void> {
    await tx.query(`UPDATE webhook_cursors SET attempts = 0, retry_at = NULL, fence = fence + 1 WHERE endpoint_id = $1`, [id]);
  }

  /** The newest attempts first, before attempt id `before` when given. */
  async attempts(roomId: string, id: string, limit: number, before?: number): Promise<WebhookAttempt[]> {
    const { rows } = await this.pool.query<{
      id: number;
      event_id: string;
      event_type: EventType;
      position: string;
      attempt: number;
      status: number | null;
      response_ms: number;
      error: string | null;
      outcome: WebhookAttempt['outcome'];
      at: Date;
    }>(
      `SELECT id, event_id, event_type, position, attempt, status, response_ms, error, outcome, at FROM webhook_attempts
        WHERE endpoint_id = $1 AND room_id = $2 AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $3`,
      [id, roomId, limit, before ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      eventType: r.event_type,
      position: r.position,
      attempt: r.attempt,
      status: r.status,
      responseMs: r.response_ms,
      error: r.error,
      outcome: r.outcome,
      at: r.at.toISOString(),
    }));
  }

  /** Starts a pass of a stream: takes a new fence and reads the endpoint and cursor. Null: the endpoint is gone. */
  async beginPass(endpointId: string, roomId: string): Promise<StreamState | null> {
    const { rows } = await this.pool.query<TargetRow & { fence: number; seq: number; n: number; attempts: number; retry_in_ms: number }>(
      `WITH c AS (
         UPDATE webhook_cursors SET fence = fence + 1 WHERE endpoint_id = $1 AND room_id = $2
         RETURNING fence, seq, n, attempts, greatest(0, extract(epoch FROM retry_at - now()) * 1000)::float8 AS retry_in_ms)
       SELECT c.*, ${TARGET_COLUMNS}
         FROM c JOIN webhook_endpoints e ON e.id = $1`,
      [endpointId, roomId],
    );
    const r = rows[0];
    if (!r) return null;
    return { fence: r.fence, position: { seq: r.seq, n: r.n }, attempts: r.attempts, retryInMs: Math.ceil(r.retry_in_ms), target: toTarget(r), ownerRole: r.owner_role };
  }

  /**
   * Records an attempt and moves the cursor as it says, in one statement. `held: false`: another
   * fence was taken since this pass began (the cursor did not move; the attempt is logged anyway,
   * since it happened). `target` is the endpoint as it is now; null: it was deleted.
   */
  async record(
    endpointId: string,
    roomId: string,
    fence: number,
    a: AttemptRecord,
  ): Promise<{ held: boolean; failingForMs: number; target: StreamTarget | null }> {
    const { rows } = await this.pool.query<TargetRow & { held: number; failing_for_ms: number }>(
      `WITH c AS (
         UPDATE webhook_cursors SET
           seq = CASE WHEN $11::bigint IS NULL THEN seq ELSE $11 END,
           n = CASE WHEN $12::bigint IS NULL THEN n ELSE $12 END,
           attempts = $13,
           retry_at = CASE WHEN $14::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $14) END
          WHERE endpoint_id = $1 AND room_id = $2 AND fence = $3
         RETURNING 1),
       a AS (
         INSERT INTO webhook_attempts (endpoint_id, room_id, event_id, event_type, position, attempt, status, response_ms, error, outcome)
         SELECT $1::uuid, $2::uuid, $4::uuid, $5::text, $6::text, $7::integer, $8::integer, $9::integer, $10::text, $15::text WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)),
       f AS (
         UPDATE webhook_endpoints SET failing_since = CASE WHEN $16::text = 'clear' THEN NULL ELSE now() END
          WHERE id = $1 AND CASE WHEN $16::text = 'clear' THEN failing_since IS NOT NULL ELSE failing_since IS NULL END)
       SELECT (SELECT count(*) FROM c)::int AS held,
              CASE WHEN $16::text = 'mark' THEN extract(epoch FROM now() - coalesce(e.failing_since, now())) * 1000 ELSE 0 END::float8 AS failing_for_ms,
              ${TARGET_COLUMNS}
         FROM webhook_endpoints e WHERE e.id = $1`,
      [
        endpointId,
        roomId,
        fence,
        a.event.id,
        a.event.type,
        a.event.position,
        a.attempt,
        a.status,
        a.responseMs,
        a.error?.slice(0, 1000) ?? null,
        a.advanceTo?.seq ?? null,
        a.advanceTo?.n ?? null,
        a.cursorAttempts,
        a.retryInMs === null ? null : a.retryInMs / 1000,
        a.outcome,
        a.failing,
      ],
    );
    const r = rows[0];
    if (!r) return { held: false, failingForMs: 0, target: null };
    return { held: r.held > 0, failingForMs: r.failing_for_ms, target: toTarget(r) };
  }

  /**
   * The stream's current fence, its cursor row locked until `tx` ends: a replay, pause or resume
   * (which take a new fence and then wake the job) waits for the caller's decision, or is seen by it.
   */
  async lockFence(tx: Queryable, endpointId: string, roomId: string): Promise<number | null> {
    const { rows } = await tx.query<{ fence: number }>('SELECT fence FROM webhook_cursors WHERE endpoint_id = $1 AND room_id = $2 FOR UPDATE', [endpointId, roomId]);
    return rows[0]?.fence ?? null;
  }

  /** The endpoint's delivery settings as they are now; null: it is gone. */
  async target(endpointId: string): Promise<StreamTarget | null> {
    const { rows } = await this.pool.query<TargetRow>(`SELECT ${TARGET_COLUMNS} FROM webhook_endpoints e WHERE e.id = $1`, [endpointId]);
    return rows[0] ? toTarget(rows[0]) : null;
  }

  /** Moves the cursor ahead past events the endpoint does not take (nothing was waiting on a retry). */
  async skipTo(endpointId: string, roomId: string, fence: number, to: RoomPosition): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE webhook_cursors SET seq = $4, n = $5, attempts = 0, retry_at = NULL WHERE endpoint_id = $1 AND room_id = $2 AND fence = $3`,
      [endpointId, roomId, fence, to.seq, to.n],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * Disables an enabled endpoint for `reason`, inside `tx`; resolves to what its owner is told, or
   * null if it was not enabled (someone else disabled it first, or it is gone).
   */
  async disable(tx: Queryable, endpointId: string, reason: Exclude<DisabledReason, 'paused'>): Promise<DisabledNotice | null> {
    const { rows } = await tx.query<{
      room_id: string;
      room_name: string;
      url: string;
      description: string;
      owner_name: string;
      owner_email: string | null;
      failing_since: Date | null;
      disabled_at: Date;
      last_error: string | null;
    }>(
      `WITH d AS (
         UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()
          WHERE id = $1 AND enabled RETURNING id, room_id, owner_id, url, description, failing_since, disabled_at)
       SELECT d.room_id, r.name AS room_name, d.url, d.description, u.display_name AS owner_name,
              CASE WHEN u.email_verified_at IS NOT NULL THEN u.email END AS owner_email, d.failing_since, d.disabled_at,
              (SELECT error FROM webhook_attempts a WHERE a.endpoint_id = d.id ORDER BY a.id DESC LIMIT 1) AS last_error
         FROM d JOIN rooms r ON r.id = d.room_id JOIN users u ON u.id = d.owner_id`,
      [endpointId, reason],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      endpointId,
      roomId: r.room_id,
      roomName: r.room_name,
      url: r.url,
      description: r.description,
      ownerName: r.owner_name,
      ownerEmail: r.owner_email,
      failingSince: iso(r.failing_since),
      disabledAt: r.disabled_at.toISOString(),
      lastError: r.last_error,
    };
  }

  /** Rooms with at least one enabled endpoint: whose commits wake streams. */
  async roomsWithEndpoints(): Promise<string[]> {
    const { rows } = await this.pool.query<{ room_id: string }>('SELECT DISTINCT room_id FROM webhook_endpoints WHERE enabled');
    return rows.map((r) => r.room_id);
  }

  /** The streams of these rooms that a new event should wake: enabled, and not waiting out a retry. */
  async wakeable(roomIds: readonly string[]): Promise<{ endpointId: string; roomId: string }[]> {
    const { rows } = await this.pool.query<{ endpoint_id: string; room_id: string }>(
      `SELECT c.endpoint_id, c.room_id FROM webhook_cursors c JOIN webhook_endpoints e ON e.id = c.endpoint_id
        WHERE c.room_id = ANY($1::uuid[]) AND e.enabled AND (c.retry_at IS NULL OR c.retry_at <= now())`,
      [roomIds],
    );
    return rows.map((r) => ({ endpointId: r.endpoint_id, roomId: r.room_id }));
  }

  /** Deletes attempts older than `keepMs`; resolves to how many. */
  async pruneAttempts(keepMs: number): Promise<number> {
    const res = await this.pool.query('DELETE FROM webhook_attempts WHERE at < now() - make_interval(secs => $1)', [keepMs / 1000]);
    return res.rowCount ?? 0;
  }
}
