/**
 * What bounces do to an address (migration 011, `mail_soft_bounces`; suppressions are the mail
 * channel's, migration 006). A hard bounce suppresses the address at once, as a 5xx from our
 * relay does; soft bounces are counted, and SOFT_BOUNCE_LIMIT of them within SOFT_BOUNCE_WINDOW
 * suppress it too: a mailbox full for two weeks is as good as gone.
 */
import type { Pool } from '../db/pool';
import type { MailStore } from '../mail/mail-store';

export const SOFT_BOUNCE_LIMIT = 5;
export const SOFT_BOUNCE_WINDOW_DAYS = 14;

export class BounceStore {
  constructor(
    private readonly pool: Pool,
    private readonly mail: Pick<MailStore, 'suppress'>,
  ) {}

  async hard(email: string, why: string): Promise<void> {
    await this.mail.suppress(email, `hard bounce: ${why}`);
  }

  /** Counts a soft bounce; resolves to whether it suppressed the address. */
  async soft(email: string, status: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ count: number }>(
      `INSERT INTO mail_soft_bounces AS b (email, count, last_status) VALUES (lower($1), 1, $2)
       ON CONFLICT (email) DO UPDATE SET
         count = CASE WHEN b.first_at < now() - make_interval(days => $3) THEN 1 ELSE b.count + 1 END,
         first_at = CASE WHEN b.first_at < now() - make_interval(days => $3) THEN now() ELSE b.first_at END,
         last_at = now(), last_status = EXCLUDED.last_status
       RETURNING count`,
      [email, status.slice(0, 200), SOFT_BOUNCE_WINDOW_DAYS],
    );
    if ((rows[0]?.count ?? 0) < SOFT_BOUNCE_LIMIT) return false;
    await this.mail.suppress(email, `${SOFT_BOUNCE_LIMIT} soft bounces within ${SOFT_BOUNCE_WINDOW_DAYS} days, the last: ${status}`);
    return true;
  }
}
