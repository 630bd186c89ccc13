import { Router, type Request } from 'express';
import { z } from 'zod';
import { roomSubscriptionsSchema } from '../../../shared/protocol/messages';
import { createdRoomSchema, joinedRoomSchema, myRoomsSchema, roomDetailsSchema, type RoomDetails } from '../../../shared/protocol/rooms';
import { isUuid } from '../../../shared/protocol/routing';
import type { AttemptLimiter } from '../auth/attempt-limiter';
import { NotFoundError, RateLimitedError } from '../errors';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { clientAddress } from '../http/client-address';
import { parse } from '../http/validate';
import type { Metrics } from '../metrics';
import type { RoomService } from '../rooms/room-service';
import { asSeenBy, type RoomStore } from '../rooms/room-store';
import type { SessionStore } from '../sessions/session-store';

const createBody = z.object({ name: z.string().trim().min(1).max(120) }).strict();
const joinBody = z.object({ inviteCode: z.string().trim().min(4).max(32) }).strict();

/** The `:roomId` path parameter, as `roomIdOf` takes it (for the API's description). */
export const roomParams = z.object({ roomId: z.guid().describe('The room\u2019s id (a malformed one is a 404 `room_not_found`)') });

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

  describeRoute({
    operationId: 'createRoom',
    method: 'post',
    path: '/api/rooms',
    tag: 'rooms',
    summary: 'Create a room (instructors)',
    description: 'The caller becomes its instructor (and gets a durable queue for it); the answer has the `inviteCode` learners join with.',
    auth: 'session',
    body: createBody,
    responses: { 201: createdRoomSchema },
    errors: ['forbidden', 'broker_unavailable'],
  });
  router.post('/rooms', async (req, res) => {
    const body = parse(createBody, req.body);
    const room = await deps.roomService.create(authOf(res).session, body.name);
    res.status(201).json({ room });
  });

  describeRoute({
    operationId: 'listRooms',
    method: 'get',
    path: '/api/rooms',
    tag: 'rooms',
    summary: 'My rooms',
    description: 'The invite code is given to the room\u2019s instructors only.',
    auth: 'session',
    responses: { 200: myRoomsSchema },
  });
  router.get('/rooms', async (_req, res) => {
    res.json({ rooms: await deps.rooms.forUser(authOf(res).session.userId) });
  });

  /**
   * An invite code is the only secret between a stranger with an account and a room: a join is
   * counted as a guess before the code is looked up, and taken back when the code was right.
   */
  describeRoute({
    operationId: 'joinRoom',
    method: 'post',
    path: '/api/rooms/join',
    tag: 'rooms',
    summary: 'Join a room by its invite code',
    description:
      'Joining a room one is in already answers it again. Unknown codes are limited like wrong passwords (10 per account and address, 20 per account, 50 per address in 15 min), then 429 `too_many_attempts` with `Retry-After`. Someone an instructor removed cannot join again (403 `removed_from_room`).',
    auth: 'session',
    body: joinBody,
    responses: { 200: joinedRoomSchema },
    errors: ['invite_not_found', 'removed_from_room', 'too_many_attempts', 'broker_unavailable'],
  });
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

  describeRoute({
    operationId: 'getRoom',
    method: 'get',
    path: '/api/rooms/:roomId',
    tag: 'rooms',
    summary: 'One room with its members',
    description: 'Learners see who is in the room; only instructors get the invite code.',
    auth: 'session',
    params: roomParams,
    responses: { 200: roomDetailsSchema },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId', async (req, res) => {
    const roomId = roomIdOf(req);
    const { room, role } = await deps.roomService.requireMember(roomId, authOf(res).session.userId);
    const members = await deps.rooms.members(roomId);
    // Learners see who is in the room; only instructors get the invite code to share.
    res.json({ room: asSeenBy(room, role), role, members } satisfies RoomDetails);
  });

  /** An instructor removes a member: Postgres, the broker's membership mirror, presence, then its live connections. */
  describeRoute({
    operationId: 'removeMember',
    method: 'delete',
    path: '/api/rooms/:roomId/members/:userId',
    tag: 'rooms',
    summary: 'Remove a member (the room\u2019s instructors)',
    description:
      'For good: joining again is 403 `removed_from_room`. Closes the member\u2019s live STOMP connections, ends its presence, deletes its instructor queue. Not oneself (leave instead), not the room\u2019s creator.',
    auth: 'session',
    params: roomParams.extend({ userId: z.guid().describe('The member to remove') }),
    responses: { 204: null },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'cannot_remove_member', 'not_found'],
  });
  router.delete('/rooms/:roomId/members/:userId', async (req, res) => {
    const memberId = String(req.params.userId ?? '');
    if (!isUuid(memberId)) throw new NotFoundError('not_found', 'no such member in this room');
    await deps.roomService.removeMember(authOf(res).session, roomIdOf(req), memberId);
    res.status(204).end();
  });

  describeRoute({
    operationId: 'leaveRoom',
    method: 'post',
    path: '/api/rooms/:roomId/leave',
    tag: 'rooms',
    summary: 'Leave a room',
    description: 'Ends the caller\u2019s own membership, like a removal, but the invite code still admits it again. The room\u2019s creator cannot leave.',
    auth: 'session',
    params: roomParams,
    responses: { 204: null },
    errors: ['room_not_found', 'not_a_member', 'creator_cannot_leave'],
  });
  router.post('/rooms/:roomId/leave', async (req, res) => {
    await deps.roomService.leave(authOf(res).session, roomIdOf(req));
    res.status(204).end();
  });

  describeRoute({
    operationId: 'roomSubscriptions',
    method: 'get',
    path: '/api/rooms/:roomId/subscriptions',
    tag: 'rooms',
    summary: 'The STOMP destinations the caller may subscribe to',
    description: 'For an instructor this also (re)declares its durable queue of the room.',
    auth: 'session',
    params: roomParams,
    responses: { 200: roomSubscriptionsSchema },
    errors: ['room_not_found', 'not_a_member', 'broker_unavailable'],
  });
  router.get('/rooms/:roomId/subscriptions', async (req, res) => {
    res.json(await deps.roomService.subscriptions(roomIdOf(req), authOf(res).session.userId));
  });

  return router;
}
