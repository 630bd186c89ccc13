import { Router } from 'express';
import type { RoomPresence } from '../../../shared/protocol/presence';
import { roomPresenceSchema } from '../../../shared/protocol/schemas';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import type { PresenceService } from '../presence/presence-service';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf, roomParams } from './room-routes';

/**
 * Presence: members heartbeat while a page is open, and anyone in the room may ask how many
 * are online; only instructors learn who.
 */
export function presenceRoutes(deps: {
  sessions: SessionStore;
  roomService: RoomService;
  presence: PresenceService;
}): Router {
  const router = Router();
  router.use('/rooms/:roomId/presence', authenticate(deps.sessions));

  describeRoute({
    operationId: 'presenceBeat',
    method: 'post',
    path: '/api/rooms/:roomId/presence',
    tag: 'presence',
    summary: 'I am here: a presence heartbeat',
    description: 'Send every 10 s while the room is open; a member unheard for longer soon counts as offline.',
    auth: 'session',
    params: roomParams,
    responses: { 204: null },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.post('/rooms/:roomId/presence', async (req, res) => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    // Only an arrival is checked in Postgres; a member already online refreshes through Redis.
    if (!(await deps.presence.refresh(roomId, userId))) {
      await deps.roomService.requireMember(roomId, userId);
      await deps.presence.beat(roomId, userId);
    }
    res.status(204).end();
  });

  /** Explicit leave (page unload, sent with fetch keepalive); expiry covers pages that never say it. */
  describeRoute({
    operationId: 'presenceLeave',
    method: 'delete',
    path: '/api/rooms/:roomId/presence',
    tag: 'presence',
    summary: 'I am gone',
    description: 'Page unload (fetch with `keepalive`); expiry covers pages that never say it.',
    auth: 'session',
    params: roomParams,
    responses: { 204: null },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.delete('/rooms/:roomId/presence', async (req, res) => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    await deps.roomService.requireMember(roomId, userId);
    await deps.presence.leave(roomId, userId);
    res.status(204).end();
  });

  describeRoute({
    operationId: 'presence',
    method: 'get',
    path: '/api/rooms/:roomId/presence',
    tag: 'presence',
    summary: 'Who is online',
    description: 'Anyone in the room learns how many are online; only instructors learn who.',
    auth: 'session',
    params: roomParams,
    responses: { 200: roomPresenceSchema },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/presence', async (req, res) => {
    const roomId = roomIdOf(req);
    const { role } = await deps.roomService.requireMember(roomId, authOf(res).session.userId);
    const body: RoomPresence = await deps.presence.snapshot(roomId, role);
    res.json(body);
  });

  return router;
}
