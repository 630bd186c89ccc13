/**
 * A person's address and its check: setting an address stores it unverified and mails a link;
 * opening the link (a POST: see account-routes.ts) verifies it. Mail about rooms goes only to
 * verified addresses (mail/mail-store.ts), and so does a password reset.
 */
import { inTransaction, type Pool } from '../db/pool';
import type { MailChannel } from '../mail/mail-channel';
import type { MailJob } from '../mail/mail-job';
import type { UserStore } from '../users/user-store';
import { verifyEmailUrl } from './account-links';
import { invalidLink, type EmailTokenStore, type TokenGrant } from './email-tokens';

/** Long enough for a person who reads mail once a day. */
export const VERIFY_TTL_MS = 24 * 3600_000;

export class EmailAddresses {
  constructor(
    private readonly o: {
      pool: Pool;
      users: Pick<UserStore, 'setEmail' | 'markEmailVerified'>;
      tokens: EmailTokenStore;
      mail: Pick<MailChannel, 'mail' | 'links' | 'wakeSender'>;
    },
  ) {}

  /**
   * Gives the user the address (lower case) and mails the link that verifies it, in one
   * transaction: the address, its token and its mail commit together or not at all. Every
   * unused link of the user dies with the old address. An address the user has verified
   * already stays verified, and nothing is mailed.
   */
  async set(userId: string, email: string): Promise<void> {
    const queued = await inTransaction(this.o.pool, async (tx) => {
      const { displayName, verified } = await this.o.users.setEmail(tx, userId, email);
      if (verified) return false;
      await this.o.tokens.voidAll(tx, userId);
      const { id, token } = await this.o.tokens.issue(tx, { userId, purpose: 'verify_email', email, ttlMs: VERIFY_TTL_MS });
      const job: MailJob = {
        to: email,
        type: 'verify_email',
        vars: { recipient: { name: displayName }, verifyUrl: verifyEmailUrl(this.o.mail.links, token), expiresHours: VERIFY_TTL_MS / 3600_000 },
      };
      await this.o.mail.mail.enqueue(tx, `verify:${id}`, job);
      return true;
    });
    if (queued) this.o.mail.wakeSender();
  }

  /** The address a live verify link is for (the page a GET shows); 400 `invalid_link` otherwise. */
  async check(token: string): Promise<TokenGrant> {
    const grant = await this.o.tokens.check('verify_email', token);
    if (!grant) throw invalidLink('confirmation');
    return grant;
  }

  /**
   * Uses the link: its address is verified, if it is still the user's. 400 `invalid_link` for
   * an unknown, used or expired link, or one for an address the user has since replaced.
   */
  async verify(token: string): Promise<TokenGrant> {
    const grant = await inTransaction(this.o.pool, async (tx) => {
      const g = await this.o.tokens.use(tx, 'verify_email', token);
      return g && (await this.o.users.markEmailVerified(tx, g.userId, g.email)) ? g : null;
    });
    if (!grant) throw invalidLink('confirmation');
    return grant;
  }
}

/**
 * The mailbox an address delivers to, as the mail-link limits count it: most providers ignore a
 * `+tag`, and Gmail ignores dots too, so `a.b+1@gmail.com` and `ab+2@gmail.com` are one inbox,
 * and counting them apart would let anyone flood it through roomcast.
 */
export function mailboxKey(email: string): string {
  const at = email.lastIndexOf('@');
  const domain = email.slice(at + 1).toLowerCase();
  let local = email.slice(0, at).toLowerCase().replace(/\+.*$/, '');
  if (domain === 'gmail.com' || domain === 'googlemail.com') local = local.replaceAll('.', '');
  return `${local}@${domain === 'googlemail.com' ? 'gmail.com' : domain}`;
}
