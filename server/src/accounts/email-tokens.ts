/**
 * The single-use links mailed to a person (migration 006, `email_tokens`): checking an address
 * and resetting a password. The token travels only in the link; the table keeps its SHA-256, so
 * a database dump hands out no working link. A user has at most one live token per purpose:
 * issuing one voids the earlier ones, and so does a new address (a link follows its address).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from '../db/pool';
import { AppError } from '../errors';

export type TokenPurpose = 'verify_email' | 'password_reset';

/** What a valid token stands for. */
export interface TokenGrant {
  userId: string;
  /** The address the link was mailed to. */
  email: string;
}

/** The answer to a link that is unknown, used or expired: 400 `invalid_link`, the same for each. */
export const invalidLink = (what: string): AppError =>
  new AppError(400, 'invalid_link', `this ${what} link is not valid: it was used, has expired, or a newer one replaced it`);

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/**
 * 32 random bytes in base64url: 43 characters. Anything else cannot be a token, and is refused
 * without a lookup.
 */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class EmailTokenStore {
  constructor(private readonly pool: Pool) {}

  /**
   * A new token for `purpose`, valid for `ttlMs`, inside the caller's transaction (so it exists
   * only if the mail carrying it is queued too); the user's earlier unused tokens for the same
   * purpose stop working.
   */
  async issue(tx: PoolClient, o: { userId: string; purpose: TokenPurpose; email: string; ttlMs: number }): Promise<{ id: string; token: string }> {
    const token = randomBytes(32).toString('base64url');
    await tx.query('UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL', [o.userId, o.purpose]);
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO email_tokens (user_id, purpose, token_hash, email, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id`,
      [o.userId, o.purpose, digest(token), o.email, o.ttlMs / 1000],
    );
    return { id: (rows[0] as { id: string }).id, token };
  }

  /** Voids every unused token of the user, whatever its purpose: its address changed. */
  async voidAll(tx: PoolClient, userId: string): Promise<void> {
    await tx.query('UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL', [userId]);
  }

  /** What the token stands for if it is unused and unexpired, without using it (for the pages a GET shows). */
  async check(purpose: TokenPurpose, token: string): Promise<TokenGrant | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const { rows } = await this.pool.query<{ user_id: string; email: string }>(
      `SELECT user_id, email FROM email_tokens
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()`,
      [digest(token), purpose],
    );
    return rows[0] ? { userId: rows[0].user_id, email: rows[0].email } : null;
  }

  /**
   * Uses the token: what it stands for, or null if it is unknown, used or expired. One UPDATE
   * that matches only an unused row, so of two concurrent uses exactly one gets the grant.
   */
  async use(tx: PoolClient, purpose: TokenPurpose, token: string): Promise<TokenGrant | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const { rows } = await tx.query<{ user_id: string; email: string }>(
      `UPDATE email_tokens SET used_at = now()
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
        RETURNING user_id, email`,
      [digest(token), purpose],
    );
    return rows[0] ? { userId: rows[0].user_id, email: rows[0].email } : null;
  }
}
