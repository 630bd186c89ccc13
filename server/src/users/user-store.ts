import type { Role } from '../../../shared/protocol/messages';
import type { User } from '../../../shared/protocol/rooms';
import { inTransaction, type Pool } from '../db/pool';
import { hashPassword, verifyPassword } from './passwords';

export type { User };

interface UserRow {
  id: string;
  username: string;
  display_name: string;
  role: Role;
  password_hash: string;
}

const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, displayName: r.display_name, role: r.role });

export class UserStore {
  constructor(private readonly pool: Pool) {}

  /** Creates a user, or returns the existing one with that username (used by seeding and tests). */
  async create(input: { username: string; displayName: string; role: Role; password: string }): Promise<User> {
    const hash = await hashPassword(input.password);
    const { rows } = await this.pool.query<UserRow>(
      `INSERT INTO users (username, display_name, role, password_hash) VALUES ($1, $2, $3, $4)
       ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
       RETURNING id, username, display_name, role, password_hash`,
      [input.username, input.displayName, input.role, hash],
    );
    return toUser(rows[0] as UserRow);
  }

  /** The user whose password matches, or null; the same work is done for unknown names. */
  async authenticate(username: string, password: string): Promise<User | null> {
    const { rows } = await this.pool.query<UserRow>(
      'SELECT id, username, display_name, role, password_hash FROM users WHERE username = $1',
      [username.toLowerCase()],
    );
    const row = rows[0];
    // Hash even for unknown users so response time does not reveal which usernames exist.
    const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_HASH);
    return row && ok ? toUser(row) : null;
  }

  /**
   * Replaces the password when `current` is right; false when it is wrong. The row is locked
   * while the current password is checked, so two concurrent changes cannot both succeed.
   */
  async changePassword(userId: string, current: string, next: string): Promise<boolean> {
    const nextHash = await hashPassword(next);
    return inTransaction(this.pool, async (db) => {
      const { rows } = await db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1 FOR UPDATE', [userId]);
      const row = rows[0];
      if (!row || !(await verifyPassword(current, row.password_hash))) return false;
      await db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, nextHash]);
      return true;
    });
  }

  async byIds(ids: string[]): Promise<User[]> {
    const { rows } = await this.pool.query<UserRow>(
      'SELECT id, username, display_name, role, password_hash FROM users WHERE id = ANY($1::uuid[])',
      [ids],
    );
    return rows.map(toUser);
  }
}

const DUMMY_HASH = await hashPassword('not-a-real-password');
