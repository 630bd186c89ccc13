/**
 * A person's account: their address and its check, and password resets by mail.
 *
 * The links in mails (`accountLinkRoutes`) need no login: the token in the link is the proof.
 * A GET of a link only shows a page with a button or a form, since mail scanners fetch links on
 * their own; only the POST the page sends acts.
 */
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { accountSchema, type Account as AccountBody } from '../../../shared/protocol/rooms';
import { ACCOUNT_PATHS } from '../accounts/account-links';
import type { Accounts } from '../accounts/accounts';
import { NotFoundError, RateLimitedError } from '../errors';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { clientAddress } from '../http/client-address';
import { checkJson, refuseInvalidUtf8 } from '../http/json-guard';
import { parse } from '../http/validate';
import type { SessionStore } from '../sessions/session-store';
import { newPassword, PASSWORD_LENGTH, type Account, type UserStore } from '../users/user-store';
import { escapeHtml, sendPage } from '../http/html-page';
import { mailboxKey } from '../accounts/email-addresses';

/** Lower case: the address is unique regardless of case, and mail is suppressed by its lower case. */
const emailAddress = z.email().max(254).transform((e) => e.toLowerCase());
const emailBody = z.object({ email: emailAddress }).strict();
const linkQuery = z.object({ token: z.string().max(100).describe('The token of the link in the mail') });
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

  describeRoute({
    operationId: 'verifyEmailPage',
    method: 'get',
    path: `/api${ACCOUNT_PATHS.verifyEmail}`,
    tag: 'account',
    summary: 'The link of the address check mail: a page with a button',
    description: 'Changes nothing (mail scanners fetch links); the button POSTs to the same URL.',
    auth: 'none',
    query: linkQuery,
    responses: { 200: { description: 'A page asking to confirm', media: 'text/html' } },
    errors: ['invalid_link'],
  });
  router.get(ACCOUNT_PATHS.verifyEmail, async (req, res) => {
    const { email: address } = await addresses.check(tokenOf(req));
    sendPage(
      res,
      'Confirm your address',
      `<p>Confirm <strong>${escapeHtml(address)}</strong> as the address of your roomcast account?</p><form method="post" action="${escapeHtml(req.originalUrl)}"><button type="submit">Confirm</button></form>`,
    );
  });

  describeRoute({
    operationId: 'verifyEmail',
    method: 'post',
    path: `/api${ACCOUNT_PATHS.verifyEmail}`,
    tag: 'account',
    summary: 'Verify the address',
    description: '400 `invalid_link` if the link is unknown, used, expired, or for an address the user has since replaced.',
    auth: 'none',
    query: linkQuery,
    responses: { 200: { description: 'A page saying it is done', media: 'text/html' } },
    errors: ['invalid_link'],
  });
  router.post(ACCOUNT_PATHS.verifyEmail, async (req, res) => {
    const { email: address } = await addresses.verify(tokenOf(req));
    sendPage(res, 'Address confirmed', `<p><strong>${escapeHtml(address)}</strong> is confirmed. You can close this page.</p>`);
  });

  describeRoute({
    operationId: 'passwordResetPage',
    method: 'get',
    path: `/api${ACCOUNT_PATHS.passwordReset}`,
    tag: 'account',
    summary: 'The link of the password reset mail: a form',
    description: 'A form (the new password, twice) that posts to POST /api/auth/password-reset/confirm.',
    auth: 'none',
    query: linkQuery,
    responses: { 200: { description: 'The form', media: 'text/html' } },
    errors: ['invalid_link'],
  });
  router.get(ACCOUNT_PATHS.passwordReset, async (req, res) => {
    const token = tokenOf(req);
    await resets.check(token);
    const field = (name: string, label: string): string =>
      `<p><label>${label}<br><input type="password" name="${name}" minlength="${PASSWORD_LENGTH.min}" maxlength="${PASSWORD_LENGTH.max}" required autocomplete="new-password"></label></p>`;
    sendPage(
      res,
      'Choose a new password',
      `<form method="post" action="${escapeHtml(req.baseUrl + ACCOUNT_PATHS.passwordResetConfirm)}">` +
        `<input type="hidden" name="token" value="${escapeHtml(token)}">` +
        field('password', `New password (at least ${PASSWORD_LENGTH.min} characters)`) +
        field('passwordAgain', 'The same again') +
        '<p><button type="submit">Set the new password</button></p></form>' +
        '<p>Every device logged in to your account is logged out.</p>',
    );
  });

  describeRoute({
    operationId: 'confirmPasswordReset',
    method: 'post',
    path: `/api${ACCOUNT_PATHS.passwordResetConfirm}`,
    tag: 'account',
    summary: 'Set a new password with the reset link\u2019s token',
    description:
      'Uses the link up, revokes every session and broker token of the user and closes its live STOMP connections, as a password change does. A form (the reset page) answers a page; JSON answers 204.',
    auth: 'none',
    body: confirmBody,
    form: confirmBody,
    responses: { 200: { description: 'Done (form): a page', media: 'text/html' }, 204: { description: 'Done (JSON)' } },
    errors: ['invalid_link'],
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
        sendPage(res, 'Password changed', '<p>Your new password is set, and every device was logged out. Log in again with the new password.</p>');
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

  describeRoute({
    operationId: 'account',
    method: 'get',
    path: '/api/account',
    tag: 'account',
    summary: 'My account',
    auth: 'session',
    responses: { 200: accountSchema },
    errors: ['not_found'],
  });
  router.get('/account', requireAuth, async (_req, res) => {
    res.json((await account(authOf(res).session.userId)) satisfies AccountBody);
  });

  /** Sets the address, unverified, and mails the link that verifies it → the account. */
  describeRoute({
    operationId: 'setEmail',
    method: 'put',
    path: '/api/account/email',
    tag: 'account',
    summary: 'Set my address (unverified) and mail it a check link',
    description:
      'The address is stored in lower case, unverified, and gets a link that verifies it (valid 24 h). An address already verified stays so and gets no mail. Only verified addresses get mail. The check mails are limited like reset requests (429 `too_many_attempts` with `Retry-After`).',
    auth: 'session',
    body: emailBody,
    responses: { 200: accountSchema },
    errors: ['email_taken', 'too_many_attempts', 'not_found'],
  });
  router.put('/account/email', requireAuth, async (req, res) => {
    const body = parse(emailBody, req.body);
    const { userId } = authOf(res).session;
    // It mails a link to an address of the caller's choosing: the same budget as a reset.
    const refused = await linkLimiter.attempt(mailboxKey(body.email), clientAddress(req));
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
  describeRoute({
    operationId: 'requestPasswordReset',
    method: 'post',
    path: `/api${ACCOUNT_PATHS.passwordReset}`,
    tag: 'account',
    summary: 'Ask for a password reset mail',
    description:
      'Always 202 `{}`, whether or not the address exists or is verified; a verified address gets a mail with a single-use link valid 30 min (a newer one voids it). At most 3 requests per address per hour and 20 per client address per 15 min, then 429 `too_many_attempts` with `Retry-After`.',
    auth: 'none',
    body: emailBody,
    responses: { 202: z.object({}).strict().describe('Accepted, whatever the address') },
    errors: ['too_many_attempts'],
  });
  router.post(ACCOUNT_PATHS.passwordReset, async (req, res) => {
    const body = parse(emailBody, req.body);
    const refused = await linkLimiter.attempt(mailboxKey(body.email), clientAddress(req));
    if (refused) {
      throw new RateLimitedError('too_many_attempts', `too many password reset requests; retry in ${refused.retryAfterSeconds} s`, refused.retryAfterSeconds);
    }
    await resets.request(body.email);
    res.status(202).json({});
  });

  return router;
}
