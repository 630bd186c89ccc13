/**
 * The record of every message. Each send is the `roomcast_send` function (migration 005): lock
 * the room row, return the earlier copy if this client message id was already stored, else take
 * the next seq and insert the message with its publish job. Sends from the API are committed in
 * groups, several in one transaction and round trip (send-batcher.ts, migration 015). The room lock serializes sends per room, which is what makes seqs gapless and
 * makes concurrent retries of one client id store it once. The message's publish job (migration
 * 005) commits with it, leased to the send request for `publishLeaseMs`.
 */
import { createHash } from 'node:crypto';
import type { Role, RoomMessage, SendMessageRequest } from '../../../shared/protocol/messages';
import { inTransaction, type Pool, type PoolClient } from '../db/pool';
import { ConflictError, ForbiddenError, NotFoundError } from '../errors';
import { SendBatcher, sendBatch, type BatchedSend } from './send-batcher';

export interface MessageRow {
  id: string;
  room_id: string;
  seq: number;
  sender_id: string;
  audience: RoomMessage['audience'];
  recipient_id: string | null;
  kind: RoomMessage['kind'];
  body: Record<string, unknown>;
  client_msg_id: string;
  created_at: Date;
  broadcast_seq: string | null;
}

export const MESSAGE_COLUMNS =
  'm.id, m.room_id, m.seq, m.sender_id, m.audience, m.recipient_id, m.kind, m.body, m.client_msg_id, m.created_at, m.broadcast_seq';

export const toMessage = (r: MessageRow): RoomMessage => ({
  id: r.id,
  roomId: r.room_id,
  seq: r.seq,
  senderId: r.sender_id,
  audience: r.audience,
  recipientId: r.recipient_id,
  kind: r.kind,
  body: r.body,
  clientMsgId: r.client_msg_id,
  createdAt: r.created_at.toISOString(),
  broadcastSeq: r.broadcast_seq === null ? null : Number(r.broadcast_seq),
});

const requestHash = (req: SendMessageRequest): string =>
  createHash('sha256')
    .update(JSON.stringify([req.audience, req.recipientId ?? null, req.kind, req.body]))
    .digest('hex');

/** Which branch `roomcast_send` (migration 002) took. */
type SendOutcome = 'created' | 'replayed' | 'room_not_found' | 'not_a_member' | 'recipient_not_found' | 'idempotency_conflict';

export type StoreResult =
  | { replayed: false; message: RoomMessage; /** The message's publish job, leased to the caller. */ publishJob: { id: number; attempts: number } }
  /** This client message id was stored by an earlier request. */
  | { replayed: true; message: RoomMessage };

type SendRow = MessageRow & { outcome: SendOutcome; job_id: number | null };

/** A send as `roomcast_send_batch` reads it. */
const batchedSend = (roomId: string, senderId: string, req: SendMessageRequest): BatchedSend => ({
  room: roomId,
  sender: senderId,
  clientMsgId: req.clientMsgId,
  hash: requestHash(req),
  audience: req.audience,
  recipient: req.recipientId ?? null,
  kind: req.kind,
  body: req.body,
});

export class MessageStore {
  private readonly batcher: SendBatcher<SendRow & { ord: number }>;

  constructor(
    private readonly pool: Pool,
    /** How long a new message's publish job is the send request's before a relay may take it. */
    readonly publishLeaseMs: number,
  ) {
    this.batcher = new SendBatcher(pool, publishLeaseMs);
  }

  /** Stores one message, committed with whatever other sends are waiting (group commit). */
  async insert(roomId: string, senderId: string, req: SendMessageRequest): Promise<StoreResult> {
    return this.result(await this.batcher.send(batchedSend(roomId, senderId, req)), req);
  }

  /** Stores one message inside the caller's transaction, which then holds the room's lock. */
  private async insertIn(tx: PoolClient, roomId: string, senderId: string, req: SendMessageRequest): Promise<StoreResult> {
    const [row] = await sendBatch<SendRow & { ord: number }>(tx, [batchedSend(roomId, senderId, req)], this.publishLeaseMs);
    return this.result(row as SendRow, req);
  }

  /** The outcome `roomcast_send` reported, as a result or the error it stands for. */
  private result(row: SendRow, req: SendMessageRequest): StoreResult {
    switch (row.outcome) {
      case 'created':
        return { replayed: false, message: toMessage(row), publishJob: { id: row.job_id as number, attempts: 1 } };
      case 'replayed':
        return { replayed: true, message: toMessage(row) };
      case 'room_not_found':
        throw new NotFoundError('room_not_found', 'no such room');
      case 'not_a_member':
        throw new ForbiddenError('not_a_member', 'you are not a member of this room');
      case 'recipient_not_found':
        throw new NotFoundError('recipient_not_found', 'the recipient is not a member of this room');
      case 'idempotency_conflict':
        throw new ConflictError('idempotency_conflict', `clientMsgId ${req.clientMsgId} was already used for a different message`);
    }
  }

  /**
   * Stores what `build` makes of the room as it is, under the room's lock, in one transaction:
   * for a message whose content depends on the log before it (a poll's tally is exactly the
   * answers stored before the reveal, whoever answers in the same second). A client message id
   * already stored answers its first message again, without building anything.
   */
  async insertBuilt(roomId: string, senderId: string, clientMsgId: string, build: (tx: PoolClient) => Promise<SendMessageRequest[]>): Promise<StoreResult[]> {
    return inTransaction(this.pool, async (tx) => {
      // The room's lock and the replay check in one round trip: everything here holds the room.
      const { rows } = await tx.query<MessageRow | { id: null }>({
        name: 'insert-built-lock',
        text: `WITH room AS (SELECT id FROM rooms WHERE id = $1 FOR UPDATE)
               SELECT ${MESSAGE_COLUMNS} FROM room LEFT JOIN messages m ON m.room_id = room.id AND m.sender_id = $2 AND m.client_msg_id = $3`,
        values: [roomId, senderId, clientMsgId],
      });
      if (rows.length === 0) throw new NotFoundError('room_not_found', 'no such room');
      const earlier = rows[0];
      if (earlier && earlier.id !== null) return [{ replayed: true, message: toMessage(earlier as MessageRow) }];
      const results: StoreResult[] = [];
      for (const req of await build(tx)) results.push(await this.insertIn(tx, roomId, senderId, req));
      return results;
    });
  }

  /** The messages with these ids that exist, in no particular order. */
  async byIds(ids: readonly string[]): Promise<RoomMessage[]> {
    const { rows } = await this.pool.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ANY($1::uuid[])`, [ids]);
    return rows.map(toMessage);
  }

  /**
   * What `userId` may see after the cursors, in seq order: everything for an instructor; for a
   * learner, messages to everyone after `afterSeq` plus, after `personalAfterSeq`, those they sent
   * or that were addressed to them. `through` says up to which seq the answer is complete
   * (see `ResyncPage`); it is read in the same statement, so from the same snapshot.
   */
  async listAfter(q: { roomId: string; userId: string; role: Role; afterSeq: number; personalAfterSeq: number; limit: number }): Promise<{
    messages: RoomMessage[];
    hasMore: boolean;
    through: number;
    broadcastThrough: number | null;
  }> {
    // The three parts are disjoint. Each is limited on its own, in seq order, so Postgres merges
    // three index scans that stop after a page instead of reading and sorting everything after
    // the cursors. The personal ones use the sender and recipient indexes (migration 003), so an
    // old personal cursor costs the caller's own few rows, not a scan of the room since then.
    type Head = { head: string; head_broadcast: string };
    const { rows } = await this.pool.query<(MessageRow & Head) | (Head & { id: null })>(
      `WITH head AS (SELECT last_seq, last_broadcast_seq FROM rooms WHERE id = $1),
       visible AS (
         (SELECT ${MESSAGE_COLUMNS} FROM messages m
           WHERE m.room_id = $1 AND m.seq > $2 AND ($3 OR m.audience = 'everyone') ORDER BY m.seq LIMIT $6)
         UNION ALL
         (SELECT ${MESSAGE_COLUMNS} FROM messages m
           WHERE NOT $3 AND m.room_id = $1 AND m.sender_id = $4 AND m.seq > $5 AND m.audience <> 'everyone' ORDER BY m.seq LIMIT $6)
         UNION ALL
         (SELECT ${MESSAGE_COLUMNS} FROM messages m
           WHERE NOT $3 AND m.room_id = $1 AND m.recipient_id = $4 AND m.sender_id <> $4 AND m.seq > $5 ORDER BY m.seq LIMIT $6)
         ORDER BY seq LIMIT $6)
       SELECT h.last_seq AS head, h.last_broadcast_seq AS head_broadcast, v.*
         FROM head h LEFT JOIN visible v ON true ORDER BY v.seq`,
      [q.roomId, q.afterSeq, q.role === 'instructor', q.userId, q.personalAfterSeq, q.limit + 1],
    );
    const found = rows.filter((r): r is MessageRow & Head => r.id !== null);
    const hasMore = found.length > q.limit;
    const messages = found.slice(0, q.limit).map(toMessage);
    // A full page is complete only up to its last row: later rows of the walk come next.
    if (hasMore) return { messages, hasMore, through: messages.at(-1)?.seq ?? q.afterSeq, broadcastThrough: null };
    return { messages, hasMore, through: Number(rows[0]?.head ?? 0), broadcastThrough: Number(rows[0]?.head_broadcast ?? 0) };
  }
}
