import { randomBytes, randomUUID } from 'node:crypto';
import type { Role } from '../../../shared/protocol/messages';
import type { Member, Room } from '../../../shared/protocol/rooms';
import { inTransaction, type Pool } from '../db/pool';

export type { Member, Room };

interface RoomRow {
  id: string;
  name: string;
  invite_code: string;
  created_by: string;
  last_seq: number;
  created_at: Date;
}

const ROOM_COLUMNS = 'r.id, r.name, r.invite_code, r.created_by, r.last_seq, r.created_at';
const toRoom = (r: RoomRow): Room => ({
  id: r.id,
  name: r.name,
  inviteCode: r.invite_code,
  createdBy: r.created_by,
  lastSeq: r.last_seq,
  createdAt: r.created_at.toISOString(),
});

// No 0/O/1/I/L: invite codes are read aloud and typed on phones.
const INVITE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export function newInviteCode(): string {
  return Array.from(randomBytes(8), (b) => INVITE_ALPHABET[b % INVITE_ALPHABET.length]).join('');
}

export const newRoomId = (): string => randomUUID();

/** A room as a member may see it: the invite code admits anyone, so only instructors get it. */
export type VisibleRoom = Omit<Room, 'inviteCode'> & { inviteCode?: string };

export function asSeenBy(room: Room, role: Role): VisibleRoom {
  if (role === 'instructor') return room;
  const seen: VisibleRoom = { ...room };
  delete seen.inviteCode;
  return seen;
}

export class RoomStore {
  constructor(private readonly pool: Pool) {}

  /** Creates the room with its creator as instructor, in one transaction. */
  async create(room: { id: string; name: string; createdBy: string }): Promise<Room> {
    return inTransaction(this.pool, async (db) => {
      const { rows } = await db.query<RoomRow>(
        `INSERT INTO rooms AS r (id, name, invite_code, created_by) VALUES ($1, $2, $3, $4)
         RETURNING ${ROOM_COLUMNS}`,
        [room.id, room.name, newInviteCode(), room.createdBy],
      );
      await db.query(`INSERT INTO memberships (room_id, user_id, role) VALUES ($1, $2, 'instructor')`, [room.id, room.createdBy]);
      return toRoom(rows[0] as RoomRow);
    });
  }

  async get(roomId: string): Promise<Room | null> {
    const { rows } = await this.pool.query<RoomRow>(`SELECT ${ROOM_COLUMNS} FROM rooms r WHERE r.id = $1`, [roomId]);
    return rows[0] ? toRoom(rows[0]) : null;
  }

  async byInviteCode(code: string): Promise<Room | null> {
    const { rows } = await this.pool.query<RoomRow>(`SELECT ${ROOM_COLUMNS} FROM rooms r WHERE r.invite_code = $1`, [code]);
    return rows[0] ? toRoom(rows[0]) : null;
  }

  /**
   * Adds the member (idempotent); returns the role the member has in the room, or null when an
   * instructor removed this user from the room (migration 004).
   */
  async addMember(roomId: string, userId: string, role: Role): Promise<Role | null> {
    const { rows } = await this.pool.query<{ role: Role }>(
      `INSERT INTO memberships (room_id, user_id, role)
       SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM room_removals WHERE room_id = $1 AND user_id = $2)
       ON CONFLICT (room_id, user_id) DO UPDATE SET role = memberships.role
       RETURNING role`,
      [roomId, userId, role],
    );
    return rows[0]?.role ?? null;
  }

  async wasRemoved(roomId: string, userId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM room_removals WHERE room_id = $1 AND user_id = $2', [roomId, userId]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Ends the membership; returns the role it had, or null when there was none. With
   * `removedBy` (an instructor removing the member) the user may not join again.
   */
  async removeMember(roomId: string, userId: string, removedBy?: string): Promise<Role | null> {
    return inTransaction(this.pool, async (db) => {
      const { rows } = await db.query<{ role: Role }>('DELETE FROM memberships WHERE room_id = $1 AND user_id = $2 RETURNING role', [
        roomId,
        userId,
      ]);
      const role = rows[0]?.role ?? null;
      if (role && removedBy) {
        await db.query('INSERT INTO room_removals (room_id, user_id, removed_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
          roomId,
          userId,
          removedBy,
        ]);
      }
      return role;
    });
  }

  async roleOf(roomId: string, userId: string): Promise<Role | null> {
    const { rows } = await this.pool.query<{ role: Role }>(
      'SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2',
      [roomId, userId],
    );
    return rows[0]?.role ?? null;
  }

  async forUser(userId: string): Promise<(VisibleRoom & { role: Role })[]> {
    const { rows } = await this.pool.query<RoomRow & { role: Role }>(
      `SELECT ${ROOM_COLUMNS}, m.role FROM rooms r JOIN memberships m ON m.room_id = r.id
       WHERE m.user_id = $1 ORDER BY r.created_at`,
      [userId],
    );
    return rows.map((r) => ({ ...asSeenBy(toRoom(r), r.role), role: r.role }));
  }

  async members(roomId: string): Promise<Member[]> {
    const { rows } = await this.pool.query<{ user_id: string; username: string; display_name: string; role: Role }>(
      `SELECT m.user_id, u.username, u.display_name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.room_id = $1 ORDER BY m.role, u.username`,
      [roomId],
    );
    return rows.map((r) => ({ userId: r.user_id, username: r.username, displayName: r.display_name, role: r.role }));
  }
}
