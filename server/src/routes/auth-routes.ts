import { Router } from 'express';
import { z } from 'zod';
import type { BrokerToken } from '../../../shared/protocol/messages';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import { AuthError } from '../errors';
import type { RoomStore } from '../rooms/room-store';
import type { SessionStore } from '../sessions/session-store';
import type { UserStore } from '../users/user-store';

const loginBody = z.object({ username: z.string().min(1).max(40), password: z.string().min(1).max(200) }).strict();

export function authRoutes(deps: { users: UserStore; sessions: SessionStore; rooms: RoomStore }): Router {
  const router = Router();
  const requireAuth = authenticate(deps.sessions);

  router.post('/auth/login', async (req, res) => {
    const body = parse(loginBody, req.body);
    const user = await deps.users.authenticate(body.username, body.password);
    if (!user) throw new AuthError('invalid_credentials', 'wrong username or password');
    const { token, expiresAt } = await deps.sessions.create({
      userId: user.id,
      username: user.username,
      displayName: user.displayName,
      role: user.role,
    });
    res.json({ token, expiresAt: expiresAt.toISOString(), user });
  });

  router.post('/auth/logout', requireAuth, async (_req, res) => {
    await deps.sessions.revoke(authOf(res).token);
    res.status(204).end();
  });

  router.get('/me', requireAuth, async (_req, res) => {
    const { session } = authOf(res);
    const rooms = await deps.rooms.forUser(session.userId);
    res.json({
      user: { id: session.userId, username: session.username, displayName: session.displayName, role: session.role },
      rooms,
    });
  });

  /** A short-lived STOMP passcode: CONNECT with login = user id, passcode = this token. */
  router.post('/broker-token', requireAuth, async (_req, res) => {
    const { session, token } = authOf(res);
    const issued = await deps.sessions.issueBrokerToken(token, session.userId);
    const body: BrokerToken = { login: session.userId, passcode: issued.passcode, expiresAt: issued.expiresAt.toISOString() };
    res.json(body);
  });

  return router;
}
