/**
 * Memberships mirrored from Postgres to Redis, one hash per room (user id -> role), so the
 * broker-auth hot path answers "may U read room R" without a database query.
 * Postgres stays the record: the app server writes here after each commit and `rebuild`
 * re-copies everything at start-up, so a lost Redis heals itself.
 */
import type { Role } from '../../../shared/protocol/messages';
import type { Pool } from '../db/pool';
import type { Redis } from '../redis';

const membersKey = (roomId: string): string => `rc:members:${roomId}`;

export class MembershipMirror {
  constructor(private readonly redis: Redis) {}

  async add(roomId: string, userId: string, role: Role): Promise<void> {
    await this.redis.hset(membersKey(roomId), userId, role);
  }

  /** Returns whether the user was in the mirror. */
  async remove(roomId: string, userId: string): Promise<boolean> {
    return (await this.redis.hdel(membersKey(roomId), userId)) > 0;
  }

  /** The member's role in the room, or null when not a member. */
  async role(roomId: string, userId: string): Promise<Role | null> {
    return (await this.redis.hget(membersKey(roomId), userId)) as Role | null;
  }

  /** Copies every membership from Postgres; returns how many it wrote. */
  async rebuild(pool: Pool): Promise<number> {
    const { rows } = await pool.query<{ room_id: string; user_id: string; role: Role }>(
      'SELECT room_id, user_id, role FROM memberships',
    );
    const batch = this.redis.pipeline();
    for (const r of rows) batch.hset(membersKey(r.room_id), r.user_id, r.role);
    await batch.exec();
    return rows.length;
  }
}
