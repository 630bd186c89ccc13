/**
 * The messages a room's interactive state is folded from: its questions and actions that the
 * member may see (the visibility rules of resync, docs/security.md), in seq order, and the seq
 * the answer is complete up to, read in the same statement so from the same snapshot.
 */
import type { Role, RoomMessage } from '../../../shared/protocol/messages';
import type { Pool } from '../db/pool';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from '../messages/message-store';

export class InteractionLog {
  constructor(private readonly pool: Pool) {}

  async visible(roomId: string, who: { userId: string; role: Role }): Promise<{ messages: RoomMessage[]; through: number }> {
    const { rows } = await this.pool.query<(MessageRow & { head: string }) | { head: string; id: null }>(
      `WITH head AS (SELECT last_seq FROM rooms WHERE id = $1)
       SELECT h.last_seq AS head, v.* FROM head h LEFT JOIN (
         SELECT ${MESSAGE_COLUMNS} FROM messages m
          WHERE m.room_id = $1 AND m.kind IN ('action', 'question')
            AND ($3 OR m.audience = 'everyone' OR m.sender_id = $2 OR m.recipient_id = $2)) v ON true
        ORDER BY v.seq`,
      [roomId, who.userId, who.role === 'instructor'],
    );
    const messages = rows.filter((r): r is MessageRow & { head: string } => r.id !== null).map(toMessage);
    return { messages, through: Number(rows[0]?.head ?? 0) };
  }
}
