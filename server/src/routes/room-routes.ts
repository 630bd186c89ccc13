import { Router, type Request } from 'express';
import { z } from 'zod';
import { isUuid } from '../../../shared/protocol/routing';
import type { AttemptLimiter } from '../auth/attempt-limiter';
import { NotFoundError, RateLimitedError } from '../errors';
import { authOf, authenticate } from '../http/authenticate';
import { clientAddress } from '../http/client-address';
import { parse } from '../http/validate';
import type { Metrics } from '../metrics';
import type { RoomService } from '../rooms/room-service';
import { asSeenBy, type RoomStore } from '../rooms/room-store';
import type { SessionStore } from '../sessions/session-store';

const createBody = z.object({ name: z.string().trim().min(1).max(120) }).strict();
const joinBody = z.object({ inviteCode: z.string().trim().min(4).max(32) }).strict();

/** The `:roomId` path parameter; a malformed id is an unknown room. */
export function roomIdOf(req: Request): string {
  const id = String(req.params.roomId ?? '');
  if (!isUuid(id)) throw new NotFoundError('room_not_found', 'no such room');
  return id;
}

export function roomRoutes(deps: {
  sessions: SessionStore;
  rooms: RoomStore;
  roomService: RoomService;
  inviteLimiter: AttemptLimiter;
  metrics: Metrics;
}): Router {
  const router = Router();
  router.use('/rooms', authenticate(deps.sessions));

  router.post('/rooms', async (req, res) => {
    const body = parse(createBody, req.body);
    const room = await deps.roomService.create(authOf(res).session, body.name);
    res.status(201).json({ room });
  });

  router.get('/rooms', async (_req, res) => {
    res.json({ rooms: await deps.rooms.forUser(authOf(res).session.userId) });
  });

  /**
   * An invite code is the only secret between a stranger with an account and a room: a join is
   * counted as a guess before the code is looked up, and taken back when the code was right.
   */
  router.post('/rooms/join', async (req, res) => {
    const body = parse(joinBody, req.body);
    const { session } = authOf(res);
    const address = clientAddress(req);
    const refused = await deps.inviteLimiter.attempt(session.userId, address);
    if (refused) {
      deps.metrics.inviteRefusals.inc({ limit: refused.limit });
      const s = refused.retryAfterSeconds;
      throw new RateLimitedError('too_many_attempts', `too many unknown invite codes; retry in ${s} s`, s);
    }
    const room = await deps.roomService.join(session, body.inviteCode);
    await deps.inviteLimiter.succeeded(session.userId, address);
    res.json({ room: { ...asSeenBy(room, room.role), role: room.role } });
  });

  router.get('/rooms/:roomId', async (req, res) => {
    const roomId = roomIdOf(req);
    const { room, role } = await deps.roomService.requireMember(roomId, authOf(res).session.userId);
    const members = await deps.rooms.members(roomId);
    // Learners see who is in the room; only instructors get the invite code to share.
    res.json({ room: asSeenBy(room, role), role, members });
  });

  /** An instructor removes a member: Postgres, the broker's membership mirror, presence, then its live connections. */
  router.delete('/rooms/:roomId/members/:userId', async (req, res) => {
    const memberId = String(req.params.userId ?? '');
    if (!isUuid(memberId)) throw new NotFoundError('not_found', 'no such member in this room');
    await deps.roomService.removeMember(authOf(res).session, roomIdOf(req), memberId);
    res.status(204).end();
  });

  router.post('/rooms/:roomId/leave', async (req, res) => {
    await deps.roomService.leave(authOf(res).session, roomIdOf(req));
    res.status(204).end();
  });

  router.get('/rooms/:roomId/subscriptions', async (req, res) => {
    res.json(await deps.roomService.subscriptions(roomIdOf(req), authOf(res).session.userId));
  });

  return router;
}
