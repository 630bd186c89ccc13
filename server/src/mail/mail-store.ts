/**
 * Every SQL statement of the mail channel (migration 006): who is in a room and how they want
 * mail, the digest watermarks, suppressed addresses, room visits. The jobs themselves go
 * through `JobQueue` (work/).
 */
import type { Role } from '../../../shared/protocol/messages';
import type { Pool, PoolClient } from '../db/pool';
import type { MailableMessage } from './concerns';

export const NOTIFY_MODES = ['immediate', 'hourly', 'daily', 'off'] as const;
export type NotifyMode = (typeof NOTIFY_MODES)[number];

/** A member of a room as the mail channel sees them. */
export interface MailMember {
  id: string;
  role: Role;
  name: string;
  /** Null unless the address is verified and not suppressed: nothing is mailed otherwise. */
  email: string | null;
  mode: NotifyMode;
}

type Db = Pick<Pool | PoolClient, 'query'>;

interface MessageRow {
  id: string;
  room_id: string;
  room_name: string;
  seq: number;
  kind: MailableMessage['kind'];
  audience: MailableMessage['audience'];
  sender_id: string;
  sender_name: string;
  sender_role: Role | null;
  recipient_id: string | null;
  body: Record<string, unknown>;
  created_at: Date;
}

const toMailable = (r: MessageRow): MailableMessage => ({
  id: r.id,
  roomId: r.room_id,
  roomName: r.room_name,
  seq: r.seq,
  kind: r.kind,
  audience: r.audience,
  senderId: r.sender_id,
  senderName: r.sender_name,
  senderRole: r.sender_role,
  recipientId: r.recipient_id,
  body: r.body,
  createdAt: r.created_at,
});

const MESSAGE_SELECT = `SELECT m.id, m.room_id, r.name AS room_name, m.seq, m.kind, m.audience, m.sender_id,
       u.display_name AS sender_name, sm.role AS sender_role, m.recipient_id, m.body, m.created_at
  FROM messages m JOIN users u ON u.id = m.sender_id JOIN rooms r ON r.id = m.room_id
  LEFT JOIN memberships sm ON sm.room_id = m.room_id AND sm.user_id = m.sender_id`;

/** Only messages of these shapes can concern anyone (see concerns.ts); the notify trigger uses the same. */
const MAY_CONCERN = `(m.kind IN ('announcement', 'question') OR m.audience = 'member')`;

export class MailStore {
  constructor(private readonly pool: Pool) {}

  async message(messageId: string): Promise<MailableMessage | null> {
    const { rows } = await this.pool.query<MessageRow>(`${MESSAGE_SELECT} WHERE m.id = $1`, [messageId]);
    return rows[0] ? toMailable(rows[0]) : null;
  }

  /** The room's members with their verified, unsuppressed address and their choice for the room. */
  async members(db: Db, roomId: string, userIds?: readonly string[]): Promise<MailMember[]> {
    const { rows } = await db.query<MailMember>(
      `SELECT u.id, ms.role, u.display_name AS name,
              CASE WHEN u.email_verified_at IS NOT NULL AND s.email IS NULL THEN u.email END AS email,
              coalesce(p.mode, 'immediate') AS mode
         FROM memberships ms JOIN users u ON u.id = ms.user_id
         LEFT JOIN notification_prefs p ON p.user_id = ms.user_id AND p.room_id = ms.room_id
         LEFT JOIN mail_suppressions s ON s.email = lower(u.email)
        WHERE ms.room_id = $1 AND ($2::uuid[] IS NULL OR ms.user_id = ANY($2::uuid[]))`,
      [roomId, userIds ?? null],
    );
    return rows;
  }

  async roomName(roomId: string, db: Db = this.pool): Promise<string | null> {
    const { rows } = await db.query<{ name: string }>('SELECT name FROM rooms WHERE id = $1', [roomId]);
    return rows[0]?.name ?? null;
  }

  /**
   * Locks the person's watermark for the room (made at 0 if new) and returns it: the digest that
   * holds the lock is the only one reading and moving it until its transaction ends.
   */
  async lockWatermark(tx: PoolClient, userId: string, roomId: string): Promise<number> {
    await tx.query('INSERT INTO mail_watermarks (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, roomId]);
    const { rows } = await tx.query<{ last_seq: number }>(
      'SELECT last_seq FROM mail_watermarks WHERE user_id = $1 AND room_id = $2 FOR UPDATE',
      [userId, roomId],
    );
    return rows[0]?.last_seq ?? 0;
  }

  /** Moves the watermark forward (never back). */
  async advanceWatermark(tx: Db, userId: string, roomId: string, seq: number): Promise<void> {
    await tx.query(
      `INSERT INTO mail_watermarks (user_id, room_id, last_seq) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, room_id) DO UPDATE SET last_seq = greatest(mail_watermarks.last_seq, EXCLUDED.last_seq)`,
      [userId, roomId, seq],
    );
  }

  /**
   * Messages of the room after seq `after.seq` (and, if given, written after `after.time`) that
   * may concern someone, oldest first, at most `limit`.
   */
  async mayConcernAfter(db: Db, roomId: string, after: { seq: number; time?: Date }, limit: number): Promise<MailableMessage[]> {
    const { rows } = await db.query<MessageRow>(
      `${MESSAGE_SELECT} WHERE m.room_id = $1 AND m.seq > $2 AND ($3::timestamptz IS NULL OR m.created_at > $3) AND ${MAY_CONCERN}
        ORDER BY m.seq LIMIT $4`,
      [roomId, after.seq, after.time ?? null, limit],
    );
    return rows.map(toMailable);
  }

  /**
   * The newest `limit` messages of the room the person may see, oldest first: everything for an
   * instructor; for a learner, messages to everyone and their own and those to them (resync's
   * rule, so no instructors-only question of another learner). A mail command's history.
   */
  async latestVisible(roomId: string, reader: { id: string; role: Role }, limit: number): Promise<MailableMessage[]> {
    const { rows } = await this.pool.query<MessageRow>(
      `${MESSAGE_SELECT} WHERE m.room_id = $1 AND ($3 OR m.audience = 'everyone' OR m.sender_id = $2 OR m.recipient_id = $2)
        ORDER BY m.seq DESC LIMIT $4`,
      [roomId, reader.id, reader.role === 'instructor', limit],
    );
    return rows.map(toMailable).reverse();
  }

  /** Messages of the room after `since` that the person may see (everyone's, and their own and to them). */
  async visibleCountSince(db: Db, roomId: string, reader: { id: string; role: Role }, since: Date): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages m
        WHERE m.room_id = $1 AND m.created_at > $2 AND m.sender_id <> $3
          AND ($4 OR m.audience = 'everyone' OR m.recipient_id = $3)`,
      [roomId, since, reader.id, reader.role === 'instructor'],
    );
    return rows[0]?.n ?? 0;
  }

  async mode(userId: string, roomId: string): Promise<NotifyMode> {
    const { rows } = await this.pool.query<{ mode: NotifyMode }>('SELECT mode FROM notification_prefs WHERE user_id = $1 AND room_id = $2', [userId, roomId]);
    return rows[0]?.mode ?? 'immediate';
  }

  async setMode(userId: string, roomId: string, mode: NotifyMode, db: Db = this.pool): Promise<void> {
    await db.query(
      `INSERT INTO notification_prefs (user_id, room_id, mode) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, room_id) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now()`,
      [userId, roomId, mode],
    );
  }

  async isSuppressed(email: string): Promise<boolean> {
    const { rows } = await this.pool.query('SELECT 1 FROM mail_suppressions WHERE email = lower($1)', [email]);
    return rows.length > 0;
  }

  async suppress(email: string, reason: string): Promise<void> {
    await this.pool.query('INSERT INTO mail_suppressions (email, reason) VALUES (lower($1), $2) ON CONFLICT (email) DO NOTHING', [email, reason.slice(0, 1000)]);
  }

  /** Lifts a suppression; resolves to whether there was one. */
  async unsuppress(email: string): Promise<boolean> {
    const res = await this.pool.query('DELETE FROM mail_suppressions WHERE email = lower($1)', [email]);
    return (res.rowCount ?? 0) > 0;
  }

  async suppressions(limit: number): Promise<{ total: number; newest: { email: string; reason: string; createdAt: string }[] }> {
    const [count, newest] = await Promise.all([
      this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mail_suppressions'),
      this.pool.query<{ email: string; reason: string; created_at: Date }>('SELECT email, reason, created_at FROM mail_suppressions ORDER BY created_at DESC LIMIT $1', [limit]),
    ]);
    return {
      total: count.rows[0]?.n ?? 0,
      newest: newest.rows.map((r) => ({ email: r.email, reason: r.reason, createdAt: r.created_at.toISOString() })),
    };
  }

  /** The member opened the room now. */
  async visited(userId: string, roomId: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO room_visits (user_id, room_id) VALUES ($1, $2)
       ON CONFLICT (user_id, room_id) DO UPDATE SET last_opened_at = now()`,
      [userId, roomId],
    );
  }

  /**
   * Learners away from a room for longer than `awayMs` who have not been reminded since they
   * last opened it, and who take mail about it; locked for this transaction (SKIP LOCKED).
   */
  async dueReminders(tx: PoolClient, awayMs: number, limit: number): Promise<{ userId: string; roomId: string; since: Date }[]> {
    const { rows } = await tx.query<{ user_id: string; room_id: string; since: Date }>(
      `SELECT ms.user_id, ms.room_id, coalesce(v.last_opened_at, ms.joined_at) AS since
         FROM memberships ms
         LEFT JOIN room_visits v ON v.user_id = ms.user_id AND v.room_id = ms.room_id
         LEFT JOIN notification_prefs p ON p.user_id = ms.user_id AND p.room_id = ms.room_id
        WHERE ms.role = 'learner' AND coalesce(p.mode, 'immediate') <> 'off'
          AND coalesce(v.last_opened_at, ms.joined_at) < now() - make_interval(secs => $1)
          AND (v.reminded_at IS NULL OR v.reminded_at < v.last_opened_at)
        ORDER BY 3 LIMIT $2`,
      [awayMs / 1000, limit],
    );
    return rows.map((r) => ({ userId: r.user_id, roomId: r.room_id, since: r.since }));
  }

  async reminded(tx: Db, userId: string, roomId: string, since: Date): Promise<void> {
    await tx.query(
      `INSERT INTO room_visits (user_id, room_id, last_opened_at, reminded_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (user_id, room_id) DO UPDATE SET reminded_at = now()`,
      [userId, roomId, since],
    );
  }
}
