/**
 * Reads room events (migration 007) after a position, as one reader may see them: the one
 * source for the pull feed, the stream and webhooks. A learner sees the room's creation, their
 * own joins and leaves, and the messages resync shows them; an instructor sees everything.
 *
 * Order within a room is the commit order: a message by its seq, any other event after the
 * message that was newest when it happened, those by their gapless `n`. Each read is one
 * statement, so the room's head is read from the same snapshot as the events: when the read is
 * complete, the next position is the head, and anything committed later lies beyond it.
 */
import type { Role } from '../../../shared/protocol/messages';
import { formatPosition, parsePosition, type RoomEvent, type RoomPosition } from '../../../shared/protocol/events';
import type { Pool, PoolClient } from '../db/pool';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from '../messages/message-store';

export interface Reader {
  id: string;
  role: Role;
}

export interface RoomEventsPage {
  events: RoomEvent[];
  next: RoomPosition;
  hasMore: boolean;
}

interface OtherRow {
  id: string;
  n: number;
  after_seq: number;
  type: 'room.created' | 'member.joined' | 'member.left';
  user_id: string;
  role: Role;
  created_at: string;
}

/** Sort key: a message sits at (seq, 0, 0); another event after message `after_seq`, by `n`. */
type Keyed = { key: [number, number, number]; event: RoomEvent };

const before = (a: Keyed, b: Keyed): number => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2];

/**
 * What `roomEvents(roomId, reader, after, limit)` returns, worked out from `everything` instead
 * of a read of its own: `everything` is an instructor's read (every event of the room, with its
 * position) complete from a position at or before `after` up to `head`. One read of a busy room
 * then serves every stream that follows it (room-tails.ts).
 *
 * The visibility rule and the position arithmetic are those of the SQL and the loop in
 * `roomEvents` above: change them together (server/test/events-stream.test.ts holds the two
 * equal for every reader and position of a room).
 */
export function readerView(reader: Reader, after: RoomPosition, everything: readonly RoomEvent[], head: RoomPosition, limit: number): RoomEventsPage {
  const all = reader.role === 'instructor';
  const events: RoomEvent[] = [];
  let pos = { ...after };
  for (const e of everything) {
    if (e.type === 'message.created') {
      const m = e.data.message;
      if (e.seq <= after.seq || !(all || m.audience === 'everyone' || m.senderId === reader.id || m.recipientId === reader.id)) continue;
      if (events.length === limit) return { events, next: pos, hasMore: true };
      pos = { seq: e.seq, n: pos.n };
    } else {
      // An instructor's position of any other event is (the seq it came after, its own n).
      const own = parsePosition(e.position) as RoomPosition;
      if (own.n <= after.n || !(all || e.type === 'room.created' || e.data.userId === reader.id)) continue;
      if (events.length === limit) return { events, next: pos, hasMore: true };
      pos = { seq: Math.max(pos.seq, own.seq), n: own.n };
    }
    events.push({ ...e, position: formatPosition(pos) });
  }
  return { events, next: { seq: Math.max(after.seq, head.seq), n: Math.max(after.n, head.n) }, hasMore: false };
}

/** Whether `p` lies beyond `head`: a position the room never gave out (made up, or from before a database restore). */
export const isBeyond = (p: RoomPosition, head: RoomPosition): boolean => p.seq > head.seq || p.n > head.n;

export class EventStore {
  constructor(private readonly pool: Pool) {}

  /** Up to `limit` events of the room after `after` that `reader` may see, in order. */
  async roomEvents(roomId: string, reader: Reader, after: RoomPosition, limit: number): Promise<RoomEventsPage> {
    const { rows } = await this.pool.query<{ last_seq: number; last_event_n: number; messages: MessageRow[] | null; others: OtherRow[] | null }>(
      `WITH msgs AS (
         SELECT ${MESSAGE_COLUMNS} FROM messages m
          WHERE m.room_id = $1 AND m.seq > $2 AND ($4 OR m.audience = 'everyone' OR m.sender_id = $3 OR m.recipient_id = $3)
          ORDER BY m.seq LIMIT $6),
       others AS (
         SELECT e.id, e.n, e.after_seq, e.type, e.user_id, e.role, e.created_at FROM room_events e
          WHERE e.room_id = $1 AND e.n > $5 AND ($4 OR e.type = 'room.created' OR e.user_id = $3)
          ORDER BY e.n LIMIT $6)
       SELECT r.last_seq, r.last_event_n,
              (SELECT json_agg(msgs ORDER BY msgs.seq) FROM msgs) AS messages,
              (SELECT json_agg(others ORDER BY others.n) FROM others) AS others
         FROM rooms r WHERE r.id = $1`,
      [roomId, after.seq, reader.id, reader.role === 'instructor', after.n, limit + 1],
    );
    const head = rows[0];
    if (!head) return { events: [], next: after, hasMore: false };
    const keyed: Keyed[] = [
      ...(head.messages ?? []).map((r): Keyed => {
        const message = toMessage({ ...r, created_at: new Date(r.created_at) });
        return {
          key: [message.seq, 0, 0],
          event: { id: message.id, type: 'message.created', roomId, seq: message.seq, position: '', createdAt: message.createdAt, data: { message } },
        };
      }),
      ...(head.others ?? []).map(
        (r): Keyed => ({
          key: [r.after_seq, 1, r.n],
          event: { id: r.id, type: r.type, roomId, seq: null, position: '', createdAt: new Date(r.created_at).toISOString(), data: { userId: r.user_id, role: r.role } },
        }),
      ),
    ].sort(before);
    const hasMore = keyed.length > limit;
    const taken = keyed.slice(0, limit);
    // Each event's position: the seq and n of everything up to it.
    let pos = { ...after };
    for (const k of taken) {
      pos = k.key[1] === 0 ? { seq: k.key[0], n: pos.n } : { seq: Math.max(pos.seq, k.key[0]), n: k.key[2] };
      k.event.position = formatPosition(pos);
    }
    // Complete: everything visible up to the head was read, so the next read starts there.
    const next = hasMore ? pos : { seq: Math.max(after.seq, head.last_seq), n: Math.max(after.n, head.last_event_n) };
    return { events: taken.map((k) => k.event), next, hasMore };
  }

  /**
   * Each room's head: the position after its newest event. A position beyond it (seq past the
   * room's last seq, or n past its last event) was not given out by this database: a stream
   * answers it with a reset. Rooms that do not exist are absent.
   */
  async heads(roomIds: readonly string[]): Promise<Map<string, RoomPosition>> {
    if (roomIds.length === 0) return new Map();
    const { rows } = await this.pool.query<{ id: string; last_seq: number; last_event_n: number }>(
      'SELECT id, last_seq, last_event_n FROM rooms WHERE id = ANY($1::uuid[])',
      [roomIds],
    );
    return new Map(rows.map((r) => [r.id, { seq: r.last_seq, n: r.last_event_n }]));
  }

  /** One room's head (see `heads`), read in the caller's transaction when `db` is one; null if no such room. */
  async head(roomId: string, db: Pick<Pool | PoolClient, 'query'> = this.pool): Promise<RoomPosition | null> {
    const { rows } = await db.query<{ last_seq: number; last_event_n: number }>('SELECT last_seq, last_event_n FROM rooms WHERE id = $1', [roomId]);
    return rows[0] ? { seq: rows[0].last_seq, n: rows[0].last_event_n } : null;
  }

  /** Whether `p` lies beyond the room's head (false for a room that does not exist). */
  async beyondHead(roomId: string, p: RoomPosition): Promise<boolean> {
    const head = await this.head(roomId);
    return head !== null && isBeyond(p, head);
  }

  /** The position right after message `seq`: the room's other events that came before it are behind it, those after it ahead. */
  async positionAfterSeq(roomId: string, seq: number, db: Pick<Pool | PoolClient, 'query'> = this.pool): Promise<RoomPosition> {
    const { rows } = await db.query<{ n: number }>('SELECT coalesce(max(n), 0)::bigint AS n FROM room_events WHERE room_id = $1 AND after_seq < $2', [roomId, seq]);
    return { seq, n: rows[0]?.n ?? 0 };
  }

  /** The rooms `userId` is a member of, with their role in each. */
  async roomsOf(userId: string): Promise<{ roomId: string; role: Role }[]> {
    const { rows } = await this.pool.query<{ room_id: string; role: Role }>('SELECT room_id, role FROM memberships WHERE user_id = $1 ORDER BY room_id', [userId]);
    return rows.map((r) => ({ roomId: r.room_id, role: r.role }));
  }
}
