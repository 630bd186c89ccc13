/**
 * Password resets by mail. A request names an address; if a verified address of an account,
 * that account gets a mail with a link that works once, for RESET_TTL_MS; using it sets a new
 * password and ends everything the old one opened, as a password change does.
 *
 * No answer may reveal whether an address exists, and neither may its timing. So the request
 * does not look the address up at all: every request, whatever the address, does the same work
 * (one INSERT of a job on the `password_reset` queue, after the same limiter call) and answers
 * the same 202. The lookup, the token and the mail happen later in a worker (leased work,
 * docs/leased-work.md), whose time no answer includes. Doing the work in the request and
 * padding the answer would hide the difference only as well as the padding guesses the slowest
 * case; the queue also survives a crash between the answer and the mail.
 */
import { randomUUID } from 'node:crypto';
import { inTransaction, type Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { MailChannel } from '../mail/mail-channel';
import type { MailJob } from '../mail/mail-job';
import type { Revocations } from '../revocation/revocations';
import type { SessionStore } from '../sessions/session-store';
import type { UserStore } from '../users/user-store';
import { JobQueue, type Job } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { oneAtATime, Worker, type JobOutcome } from '../work/worker';
import { passwordResetUrl } from './account-links';
import { invalidLink, type EmailTokenStore } from './email-tokens';

export const RESET_QUEUE = 'password_reset';
/** Short: the link is as good as the password until it is used. */
export const RESET_TTL_MS = 30 * 60_000;

/** A job on RESET_QUEUE: someone asked for a reset of the account with this address (lower case). */
export interface ResetRequest {
  email: string;
}

export class PasswordResets {
  readonly worker: Worker<ResetRequest>;
  private readonly requests: JobQueue<ResetRequest>;

  constructor(
    private readonly o: {
      pool: Pool;
      users: Pick<UserStore, 'lockByVerifiedEmail' | 'hashNewPassword' | 'setPasswordHash'>;
      tokens: EmailTokenStore;
      sessions: Pick<SessionStore, 'revokeAll'>;
      revocations: Pick<Revocations, 'request'>;
      mail: Pick<MailChannel, 'mail' | 'links' | 'wakeSender'>;
      logger: Logger;
    },
  ) {
    this.requests = new JobQueue<ResetRequest>(o.pool, RESET_QUEUE);
    this.worker = new Worker({
      queue: this.requests,
      batch: 20,
      leaseMs: 60_000,
      intervalMs: 1000,
      // A reset mail minutes late is of little use: a few quick tries, then the person asks again.
      schedule: exponentialBackoff({ firstMs: 1000, maxMs: 30_000, maxAttempts: 5 }),
      logger: o.logger,
      // Each job is its own transaction; a throw would retry the whole batch and mail twice.
      handle: oneAtATime((job) => this.mailLink(job).catch((err: unknown): JobOutcome => ({ id: job.id, outcome: 'retry', error: (err as Error).message }))),
    });
  }

  /**
   * Takes a request for `email` (lower case): the same work whatever the address (see the top
   * of this file). A random ref, so asking again makes a new job rather than finding the last.
   */
  async request(email: string): Promise<void> {
    await this.requests.enqueue(this.o.pool, randomUUID(), { email });
    this.worker.wake();
  }

  /**
   * The worker's part: a token and its mail for a verified address, in one transaction with the
   * account's row locked (a concurrent change of address waits, then voids the token). An
   * unknown or unverified address gets nothing. If the worker dies after the commit, the job is
   * done again: a second mail, whose link replaces the first.
   */
  private async mailLink(job: Job<ResetRequest>): Promise<JobOutcome> {
    const queued = await inTransaction(this.o.pool, async (tx) => {
      const user = await this.o.users.lockByVerifiedEmail(tx, job.payload.email);
      if (!user) return false;
      const { id, token } = await this.o.tokens.issue(tx, { userId: user.id, purpose: 'password_reset', email: user.email, ttlMs: RESET_TTL_MS });
      const mail: MailJob = {
        to: user.email,
        type: 'password_reset',
        vars: { recipient: { name: user.displayName }, resetUrl: passwordResetUrl(this.o.mail.links, token), expiresMinutes: RESET_TTL_MS / 60_000 },
      };
      await this.o.mail.mail.enqueue(tx, `reset:${id}`, mail);
      return true;
    });
    if (queued) this.o.mail.wakeSender();
    return { id: job.id, outcome: 'done' };
  }

  /** 400 `invalid_link` unless the reset link is live (the page a GET shows). */
  async check(token: string): Promise<void> {
    if (!(await this.o.tokens.check('password_reset', token))) throw invalidLink('password reset');
  }

  /**
   * Uses the link: the password becomes `password` (rules checked by the caller), the link is
   * used up (of two concurrent uses exactly one wins), then every session of the user ends and
   * their live broker connections close, exactly as after a password change
   * (routes/auth-routes.ts). 400 `invalid_link` for an unknown, used or expired link.
   */
  async confirm(token: string, password: string): Promise<void> {
    // Checked before hashing so a made-up token costs no scrypt; used below, atomically.
    await this.check(token);
    const hash = await this.o.users.hashNewPassword(password);
    const userId = await inTransaction(this.o.pool, async (tx) => {
      const grant = await this.o.tokens.use(tx, 'password_reset', token);
      if (grant) await this.o.users.setPasswordHash(tx, grant.userId, hash);
      return grant?.userId ?? null;
    });
    if (!userId) throw invalidLink('password reset');
    await this.o.sessions.revokeAll(userId);
    await this.o.revocations.request(userId, 'password_changed');
  }
}
