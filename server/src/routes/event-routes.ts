/**
 * The pull feed (watermark): a room's events, or all the caller's rooms' events, after a cursor,
 * a page at a time. docs/events.md.
 */
import { Router } from 'express';
import { z } from 'zod';
import { formatPosition, parsePosition, type EventPage } from '../../../shared/protocol/events';
import { eventPageSchema } from '../../../shared/protocol/schemas';
import { AppError } from '../errors';
import type { EventFeed } from '../events/event-feed';
import { decodeCursor, encodeCursor } from '../events/event-feed';
import type { EventStore } from '../events/event-store';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf, roomParams } from './room-routes';

const pageQuery = z
  .object({
    after: z
      .string()
      .max(64 * 1024)
      .optional()
      .describe('Where to go on from: the `next` of the previous page (or, for one room, an event\u2019s `position`); none: from the beginning'),
    limit: z.coerce.number().int().min(1).max(500).default(100).describe('At most this many events'),
  })
  .strict();

/** A position the room never reached: made up, or held from before the database was restored. */
const beyondRoom = (what: string): AppError =>
  new AppError(400, 'invalid_cursor', `${what} is beyond the room\u2019s newest event (was the database restored?); drop what you hold of the room and start again without \`after\``);

export function eventRoutes(deps: { sessions: SessionStore; roomService: RoomService; events: EventStore; feed: EventFeed }): Router {
  const router = Router();
  router.use(['/events', '/rooms/:roomId/events'], authenticate(deps.sessions));

  describeRoute({
    operationId: 'roomEvents',
    method: 'get',
    path: '/api/rooms/:roomId/events',
    tag: 'events',
    summary: 'A room\u2019s events after a position (pull)',
    description:
      'The room\u2019s events (`room.created`, `member.joined`, `member.left`, `message.created`) the caller may see, in the room\u2019s order, after `after` (a room position "<seq>.<n>", as `next` or an event\u2019s `position` gives it; never built by hand). Page with `next` while `hasMore`; a position of any age works. ' +
      '`invalid_cursor` (400): `after` is not a room position, or it is beyond the room\u2019s newest event (a made-up position, or one held from before the database was restored): start again without `after`.',
    auth: 'session',
    params: roomParams,
    query: pageQuery,
    responses: { 200: eventPageSchema },
    errors: ['invalid_request', 'invalid_cursor', 'room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/events', async (req, res) => {
    const roomId = roomIdOf(req);
    const q = parse(pageQuery, req.query, 'query');
    const after = q.after === undefined ? { seq: 0, n: 0 } : parsePosition(q.after);
    if (!after) throw new AppError(400, 'invalid_cursor', 'after must be a room position such as "42.3", as `next` or an event\u2019s `position` gives it');
    const userId = authOf(res).session.userId;
    const { role } = await deps.roomService.requireMember(roomId, userId);
    if (q.after !== undefined && (await deps.events.beyondHead(roomId, after))) throw beyondRoom('after');
    const page = await deps.events.roomEvents(roomId, { id: userId, role }, after, q.limit);
    res.json({ events: page.events, next: formatPosition(page.next), hasMore: page.hasMore } satisfies EventPage);
  });

  describeRoute({
    operationId: 'events',
    method: 'get',
    path: '/api/events',
    tag: 'events',
    summary: 'The events of all the caller\u2019s rooms after a cursor (pull)',
    description:
      'Oldest first across rooms, in order within each. The cursor (`next`) is opaque and holds a position per room, so an event that commits late in one room is never skipped; a cursor of any age works. ' +
      '`invalid_cursor` (400): `after` is not a cursor this API gave out, or it holds a position beyond one of the caller\u2019s rooms\u2019 newest event (a database restored from a backup): start again without `after`.',
    auth: 'session',
    query: pageQuery,
    responses: { 200: eventPageSchema },
    errors: ['invalid_request', 'invalid_cursor'],
  });
  router.get('/events', async (req, res) => {
    const q = parse(pageQuery, req.query, 'query');
    const userId = authOf(res).session.userId;
    const cursor = decodeCursor(q.after);
    if (cursor.size > 0) {
      const [room] = (await deps.feed.roomsBeyond(userId, cursor)).beyond;
      if (room) throw beyondRoom(`after holds a position for room ${room} that`);
    }
    const page = await deps.feed.after(userId, cursor, q.limit);
    res.json({ events: page.events, next: encodeCursor(page.next), hasMore: page.hasMore } satisfies EventPage);
  });

  return router;
}
