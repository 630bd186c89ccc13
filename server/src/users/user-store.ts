import { z } from 'zod';
import type { Role } from '../../../shared/protocol/messages';
import type { User } from '../../../shared/protocol/rooms';
import { inTransaction, type Pool, type PoolClient } from '../db/pool';
import { ConflictError } from '../errors';
import { hashPassword, verifyPassword } from './passwords';

export type { User };

/** How long a new password may be, wherever one is chosen (a change or a reset). */
export const PASSWORD_LENGTH = { min: 10, max: 200 } as const;

/** A new password as every route that sets one checks it. */
export const newPassword = z.string().min(PASSWORD_LENGTH.min, `at least ${PASSWORD_LENGTH.min} characters`).max(PASSWORD_LENGTH.max);

/** A user as their own account page shows them. */
export interface Account {
  username: string;
  displayName: string;
  role: Role;
  email: string | null;
  emailVerified: boolean;
}

/** Postgres's unique_violation, and the index that keeps an address to one account (migration 006). */
const UNIQUE_VIOLATION = '23505';
const EMAIL_INDEX = 'users_email';

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

  async account(userId: string): Promise<Account | null> {
    const { rows } = await this.pool.query<{ username: string; display_name: string; role: Role; email: string | null; verified: boolean }>(
      'SELECT username, display_name, role, email, email_verified_at IS NOT NULL AS verified FROM users WHERE id = $1',
      [userId],
    );
    const r = rows[0];
    return r ? { username: r.username, displayName: r.display_name, role: r.role, email: r.email, emailVerified: r.verified } : null;
  }

  /**
   * Gives the user the address `email` (lower case), unverified unless it is the address they
   * already had verified. Resolves to their display name and whether the address is verified;
   * 409 `email_taken` if another account has it.
   */
  async setEmail(tx: PoolClient, userId: string, email: string): Promise<{ displayName: string; verified: boolean }> {
    try {
      const { rows } = await tx.query<{ display_name: string; verified: boolean }>(
        `UPDATE users SET email = $2, email_verified_at = CASE WHEN email = $2 THEN email_verified_at END
          WHERE id = $1 RETURNING display_name, email_verified_at IS NOT NULL AS verified`,
        [userId, email],
      );
      const r = rows[0] as { display_name: string; verified: boolean };
      return { displayName: r.display_name, verified: r.verified };
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code === UNIQUE_VIOLATION && e.constraint === EMAIL_INDEX) throw new ConflictError('email_taken', 'another account has this address');
      throw err;
    }
  }

  /**
   * Marks `email` verified if it is still the user's address; false if they have changed it
   * since (the link was for an address they no longer have).
   */
  async markEmailVerified(tx: PoolClient, userId: string, email: string): Promise<boolean> {
    const res = await tx.query('UPDATE users SET email_verified_at = now() WHERE id = $1 AND email = $2', [userId, email]);
    return res.rowCount === 1;
  }

  /**
   * The account whose verified address is `email` (lower case), or null; its row stays locked
   * until `tx` ends, so the address cannot change while a link is mailed to it.
   */
  async lockByVerifiedEmail(tx: PoolClient, email: string): Promise<{ id: string; displayName: string; email: string } | null> {
    const { rows } = await tx.query<{ id: string; display_name: string; email: string }>(
      `SELECT id, display_name, email FROM users
        WHERE lower(email) = $1 AND email IS NOT NULL AND email_verified_at IS NOT NULL FOR UPDATE`,
      [email],
    );
    return rows[0] ? { id: rows[0].id, displayName: rows[0].display_name, email: rows[0].email } : null;
  }

  /**
   * Replaces the password without the current one: the caller has proved otherwise that the
   * account is theirs (a reset link), inside `tx` with that proof. Hash first with
   * `hashNewPassword`, outside the transaction: scrypt takes tens of milliseconds.
   */
  async setPasswordHash(tx: PoolClient, userId: string, passwordHash: string): Promise<void> {
    await tx.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, passwordHash]);
  }

  /** The stored form of a new password, for `setPasswordHash`. */
  hashNewPassword(password: string): Promise<string> {
    return hashPassword(password);
  }

  /** Gives a demo user a verified address (idempotent). */
  async setVerifiedEmail(userId: string, email: string): Promise<void> {
    await this.pool.query(
      `UPDATE users SET email = $2, email_verified_at = CASE WHEN email = $2 THEN coalesce(email_verified_at, now()) ELSE now() END
        WHERE id = $1`,
      [userId, email],
    );
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
