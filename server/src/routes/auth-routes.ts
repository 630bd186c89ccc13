import { Router, type Request } from 'express';
import { z } from 'zod';
import { brokerTokenSchema, type BrokerToken } from '../../../shared/protocol/messages';
import { loginResponseSchema, meSchema, type LoginResponse, type Me } from '../../../shared/protocol/rooms';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { AttemptLimiter } from '../auth/attempt-limiter';
import { clientAddress } from '../http/client-address';
import { AuthError, RateLimitedError } from '../errors';
import type { Metrics } from '../metrics';
import type { Revocations } from '../revocation/revocations';
import type { RoomStore } from '../rooms/room-store';
import type { Session, SessionStore } from '../sessions/session-store';
import { newPassword, PASSWORD_LENGTH, type UserStore } from '../users/user-store';

const loginBody = z.object({ username: z.string().min(1).max(40), password: z.string().min(1).max(PASSWORD_LENGTH.max) }).strict();
const passwordBody = z
  .object({ currentPassword: z.string().min(1).max(PASSWORD_LENGTH.max), newPassword })
  .strict()
  .refine((b) => b.newPassword !== b.currentPassword, { path: ['newPassword'], message: 'must differ from the current password' });

export function authRoutes(deps: {
  users: UserStore;
  sessions: SessionStore;
  rooms: RoomStore;
  loginLimiter: AttemptLimiter;
  revocations: Revocations;
  metrics: Metrics;
}): Router {
  const router = Router();
  const requireAuth = authenticate(deps.sessions);

  /** Counts a password check against the login limits, or refuses it with 429 and Retry-After. */
  const limitAttempt = async (username: string, req: Request): Promise<void> => {
    const refused = await deps.loginLimiter.attempt(username, clientAddress(req));
    if (!refused) return;
    deps.metrics.loginRefusals.inc({ limit: refused.limit });
    throw new RateLimitedError('too_many_attempts', `too many failed logins; retry in ${refused.retryAfterSeconds} s`, refused.retryAfterSeconds);
  };

  const newSession = (user: Session): Promise<{ token: string; expiresAt: Date }> =>
    deps.sessions.create({ userId: user.userId, username: user.username, displayName: user.displayName, role: user.role });

  describeRoute({
    operationId: 'login',
    method: 'post',
    path: '/api/auth/login',
    tag: 'auth',
    summary: 'Log in: a session token',
    description:
      'Send the token as `Authorization: Bearer <token>` after. Failed attempts are limited per account and address, per account, and per address; over a limit, 429 `too_many_attempts` with `Retry-After`.',
    auth: 'none',
    body: loginBody,
    responses: { 200: loginResponseSchema },
    errors: ['invalid_credentials', 'too_many_attempts'],
  });
  router.post('/auth/login', async (req, res) => {
    const body = parse(loginBody, req.body);
    await limitAttempt(body.username, req);
    const user = await deps.users.authenticate(body.username, body.password);
    if (!user) throw new AuthError('invalid_credentials', 'wrong username or password');
    await deps.loginLimiter.succeeded(body.username, clientAddress(req));
    const { token, expiresAt } = await newSession({ userId: user.id, username: user.username, displayName: user.displayName, role: user.role });
    res.json({ token, expiresAt: expiresAt.toISOString(), user } satisfies LoginResponse);
  });

  /** Ends this session and closes the user's live broker connections (other devices reconnect with their own sessions). */
  describeRoute({
    operationId: 'logout',
    method: 'post',
    path: '/api/auth/logout',
    tag: 'auth',
    summary: 'Log out',
    description:
      'Revokes the session and every broker token issued under it, and closes the user\u2019s live STOMP connections within seconds (other devices reconnect with their own sessions).',
    auth: 'session',
    responses: { 204: null },
  });
  router.post('/auth/logout', requireAuth, async (_req, res) => {
    const { token, session } = authOf(res);
    await deps.sessions.revoke(token);
    await deps.revocations.request(session.userId, 'logout');
    res.status(204).end();
  });

  /**
   * Changes the password, ends every session and broker token of the user, closes its live
   * broker connections, and answers with a fresh session for the caller. The current password
   * is checked under the login limits: a stolen session must not become a guessing oracle.
   */
  describeRoute({
    operationId: 'changePassword',
    method: 'post',
    path: '/api/auth/password',
    tag: 'auth',
    summary: 'Change the password: a new session',
    description:
      'Revokes every session and broker token of the user and closes its live STOMP connections, then answers a fresh session for the caller. The current password counts against the login limits.',
    auth: 'session',
    body: passwordBody,
    responses: { 200: loginResponseSchema },
    errors: ['invalid_credentials', 'too_many_attempts'],
  });
  router.post('/auth/password', requireAuth, async (req, res) => {
    const body = parse(passwordBody, req.body);
    const { session } = authOf(res);
    await limitAttempt(session.username, req);
    if (!(await deps.users.changePassword(session.userId, body.currentPassword, body.newPassword))) {
      throw new AuthError('invalid_credentials', 'the current password is wrong');
    }
    await deps.loginLimiter.succeeded(session.username, clientAddress(req));
    await deps.sessions.revokeAll(session.userId);
    await deps.revocations.request(session.userId, 'password_changed');
    const { token, expiresAt } = await newSession(session);
    res.json({
      token,
      expiresAt: expiresAt.toISOString(),
      user: { id: session.userId, username: session.username, displayName: session.displayName, role: session.role },
    } satisfies LoginResponse);
  });

  describeRoute({
    operationId: 'me',
    method: 'get',
    path: '/api/me',
    tag: 'auth',
    summary: 'The caller and their rooms',
    auth: 'session',
    responses: { 200: meSchema },
  });
  router.get('/me', requireAuth, async (_req, res) => {
    const { session } = authOf(res);
    const rooms = await deps.rooms.forUser(session.userId);
    res.json({
      user: { id: session.userId, username: session.username, displayName: session.displayName, role: session.role },
      rooms,
    } satisfies Me);
  });

  /** A short-lived STOMP passcode: CONNECT with login = user id, passcode = this token. */
  describeRoute({
    operationId: 'brokerToken',
    method: 'post',
    path: '/api/broker-token',
    tag: 'auth',
    summary: 'A STOMP passcode',
    description: 'For the STOMP CONNECT frame on the WebSocket `/ws`: `login` = the user id, `passcode` = this token.',
    auth: 'session',
    responses: { 200: brokerTokenSchema },
  });
  router.post('/broker-token', requireAuth, async (_req, res) => {
    const { session, token } = authOf(res);
    const issued = await deps.sessions.issueBrokerToken(token, session.userId);
    const body: BrokerToken = { login: session.userId, passcode: issued.passcode, expiresAt: issued.expiresAt.toISOString() };
    res.json(body);
  });

  return router;
}
