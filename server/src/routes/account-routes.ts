/**
 * A person's account: their address and its check, and password resets by mail.
 *
 * The links in mails (`accountLinkRoutes`) need no login: the token in the link is the proof.
 * A GET of a link only shows a page with a button or a form, since mail scanners fetch links on
 * their own; only the POST the page sends acts.
 */
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { ACCOUNT_PATHS } from '../accounts/account-links';
import type { Accounts } from '../accounts/accounts';
import { NotFoundError, RateLimitedError } from '../errors';
import { authOf, authenticate } from '../http/authenticate';
import { clientAddress } from '../http/client-address';
import { checkJson, refuseInvalidUtf8 } from '../http/json-guard';
import { parse } from '../http/validate';
import type { SessionStore } from '../sessions/session-store';
import { newPassword, PASSWORD_LENGTH, type Account, type UserStore } from '../users/user-store';
import { escapeHtml, htmlPage } from '../http/html-page';

/** Lower case: the address is unique regardless of case, and mail is suppressed by its lower case. */
const emailAddress = z.email().max(254).transform((e) => e.toLowerCase());
const emailBody = z.object({ email: emailAddress }).strict();
const linkQuery = z.object({ token: z.string().max(100) });
const confirmBody = z
  .object({
    token: z.string().max(100),
    password: newPassword,
    /** The reset page asks twice; JSON clients may leave it out. */
    passwordAgain: z.string().max(PASSWORD_LENGTH.max).optional(),
  })
  .strict()
  .refine((b) => b.passwordAgain === undefined || b.passwordAgain === b.password, { path: ['passwordAgain'], message: 'the two passwords differ' });

/** The confirm form is a few hundred bytes; a token and a password in JSON too. */
const CONFIRM_BODY_LIMIT = '8kb';



/** The token of a link; a link without one is as bad as one with a wrong one (the flows answer 400 `invalid_link`). */
const tokenOf = (req: Request): string => {
  const q = linkQuery.safeParse(req.query);
  return q.success ? q.data.token : '';
};

/**
 * The links in mails and the reset form. Mounted before the JSON body guard: a browser posts
 * these forms as `application/x-www-form-urlencoded`, which only the confirm route parses.
 */
export function accountLinkRoutes(deps: { accounts: Accounts }): Router {
  const router = Router();
  const { addresses, resets } = deps.accounts;

  router.get(ACCOUNT_PATHS.verifyEmail, async (req, res) => {
    const { email: address } = await addresses.check(tokenOf(req));
    res
      .type('html')
      .send(
        htmlPage(
          'Confirm your address',
          `<p>Confirm <strong>${escapeHtml(address)}</strong> as the address of your roomcast account?</p><form method="post" action="${escapeHtml(req.originalUrl)}"><button type="submit">Confirm</button></form>`,
        ),
      );
  });

  router.post(ACCOUNT_PATHS.verifyEmail, async (req, res) => {
    const { email: address } = await addresses.verify(tokenOf(req));
    res.type('html').send(htmlPage('Address confirmed', `<p><strong>${escapeHtml(address)}</strong> is confirmed. You can close this page.</p>`));
  });

  router.get(ACCOUNT_PATHS.passwordReset, async (req, res) => {
    const token = tokenOf(req);
    await resets.check(token);
    const field = (name: string, label: string): string =>
      `<p><label>${label}<br><input type="password" name="${name}" minlength="${PASSWORD_LENGTH.min}" maxlength="${PASSWORD_LENGTH.max}" required autocomplete="new-password"></label></p>`;
    res
      .type('html')
      .send(
        htmlPage(
          'Choose a new password',
          `<form method="post" action="${escapeHtml(req.baseUrl + ACCOUNT_PATHS.passwordResetConfirm)}">` +
            `<input type="hidden" name="token" value="${escapeHtml(token)}">` +
            field('password', `New password (at least ${PASSWORD_LENGTH.min} characters)`) +
            field('passwordAgain', 'The same again') +
            '<p><button type="submit">Set the new password</button></p></form>' +
            '<p>Every device logged in to your account is logged out.</p>',
        ),
      );
  });

  router.post(
    ACCOUNT_PATHS.passwordResetConfirm,
    express.urlencoded({ extended: false, limit: CONFIRM_BODY_LIMIT, parameterLimit: 10 }),
    express.json({ limit: CONFIRM_BODY_LIMIT, strict: true, verify: refuseInvalidUtf8 }),
    async (req, res) => {
      // What the JSON guard checks on every other route (this one runs before it).
      if (req.body !== undefined) checkJson(req.body);
      const body = parse(confirmBody, req.body);
      await resets.confirm(body.token, body.password);
      if (req.is('application/x-www-form-urlencoded')) {
        res.type('html').send(htmlPage('Password changed', '<p>Your new password is set, and every device was logged out. Log in again with the new password.</p>'));
      } else {
        res.status(204).end();
      }
    },
  );

  return router;
}

export function accountRoutes(deps: { sessions: SessionStore; users: UserStore; accounts: Accounts }): Router {
  const router = Router();
  const requireAuth = authenticate(deps.sessions);
  const { addresses, resets, linkLimiter } = deps.accounts;

  const account = async (userId: string): Promise<Account> => {
    const found = await deps.users.account(userId);
    if (!found) throw new NotFoundError('not_found', 'this account no longer exists');
    return found;
  };

  router.get('/account', requireAuth, async (_req, res) => {
    res.json(await account(authOf(res).session.userId));
  });

  /** Sets the address, unverified, and mails the link that verifies it → the account. */
  router.put('/account/email', requireAuth, async (req, res) => {
    const body = parse(emailBody, req.body);
    const { userId } = authOf(res).session;
    // It mails a link to an address of the caller's choosing: the same budget as a reset.
    const refused = await linkLimiter.attempt(body.email, clientAddress(req));
    if (refused) {
      throw new RateLimitedError('too_many_attempts', `too many mails to that address; retry in ${refused.retryAfterSeconds} s`, refused.retryAfterSeconds);
    }
    await addresses.set(userId, body.email);
    res.json(await account(userId));
  });

  /**
   * Asks for a reset mail. The same 202 `{}` whether or not the address exists or is verified,
   * after the same work (see accounts/password-resets.ts); the limits count unknown addresses too.
   */
  router.post(ACCOUNT_PATHS.passwordReset, async (req, res) => {
    const body = parse(emailBody, req.body);
    const refused = await linkLimiter.attempt(body.email, clientAddress(req));
    if (refused) {
      throw new RateLimitedError('too_many_attempts', `too many password reset requests; retry in ${refused.retryAfterSeconds} s`, refused.retryAfterSeconds);
    }
    await resets.request(body.email);
    res.status(202).json({});
  });

  return router;
}
