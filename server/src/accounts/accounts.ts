/**
 * The account flows that go by mail, built once per app server: an address and its check
 * (email-addresses.ts), password resets (password-resets.ts) and their limiter. The reset
 * worker is leased work on the jobs table, so any number of app servers share it.
 */
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { MailChannel } from '../mail/mail-channel';
import type { Redis } from '../redis';
import type { Revocations } from '../revocation/revocations';
import type { SessionStore } from '../sessions/session-store';
import type { UserStore } from '../users/user-store';
import { EmailAddresses } from './email-addresses';
import { EmailTokenStore } from './email-tokens';
import { PasswordResets } from './password-resets';
import { AttemptLimiter } from '../auth/attempt-limiter';

export class Accounts {
  readonly addresses: EmailAddresses;
  readonly resets: PasswordResets;
  readonly linkLimiter: AttemptLimiter;

  constructor(o: { pool: Pool; redis: Redis; users: UserStore; sessions: SessionStore; revocations: Revocations; mail: MailChannel; logger: Logger }) {
    const tokens = new EmailTokenStore(o.pool);
    this.addresses = new EmailAddresses({ pool: o.pool, users: o.users, tokens, mail: o.mail });
    this.resets = new PasswordResets({ ...o, tokens });
    this.linkLimiter = AttemptLimiter.mailedLinks(o.redis);
  }

  /** Starts working reset requests in this process (any app server's worker may take them). */
  start(): void {
    this.resets.worker.start();
  }

  async stop(): Promise<void> {
    await this.resets.worker.stop();
  }
}
