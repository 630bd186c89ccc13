/**
 * The event stream (Server-Sent Events): tickets, a room's stream, the stream of all the
 * caller's rooms. docs/events.md, "Stream".
 *
 * Mount before `eventRoutes`: that router asks every path under /events and
 * /rooms/:id/events for an Authorization header, which an EventSource cannot send.
 */
import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../../../runtime/config';
import { formatPosition, parsePosition, type RoomPosition, type StreamResetData } from '../../../shared/protocol/events';
import { eventStreamTicketSchema } from '../../../shared/protocol/schemas';
import { isUuid } from '../../../shared/protocol/routing';
import { AppError, RateLimitedError } from '../errors';
import { decodeCursor, encodeCursor, type EventFeed } from '../events/event-feed';
import type { EventStore } from '../events/event-store';
import { EventStream } from '../events/event-stream';
import type { RoomEventListener } from '../events/room-event-listener';
import type { RoomTails } from '../events/room-tails';
import { SseResponse } from '../events/sse-response';
import type { StreamHub } from '../events/stream-hub';
import type { StreamSlots } from '../events/stream-slots';
import { FeedSource, RoomSource, type StreamSource } from '../events/stream-sources';
import type { StreamTickets } from '../events/stream-tickets';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { Logger } from '../logger';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf, roomParams } from './room-routes';

/** What a plain EventSource waits before reconnecting by itself (ours get a new ticket first). */
const RETRY_MS = 2000;
/** Lifetimes are spread over their last 10%, so streams opened together do not all end together. */
const LIFETIME_SPREAD = 0.1;
const START: RoomPosition = { seq: 0, n: 0 };

const ticketBody = z.object({ roomId: z.string().refine(isUuid, 'must be a room id').optional() }).strict();
const streamQuery = z
  .object({
    ticket: z.string().max(200),
    lastEventId: z.string().max(64 * 1024).optional(),
  })
  .strict();

/** What both streams send, for the API's description. */
const STREAM_DESCRIPTION =
  'Server-Sent Events (`text/event-stream`), for an EventSource: get a ticket (POST /api/events/tickets) and open `?ticket=…`. ' +
  'First `resume` (`{stream, after, requested}`: where this connection reads from), preceded by `reset` (`{reason, rooms}`) when the id given lies beyond a room\u2019s last event (a restored database: drop what you hold of those rooms). ' +
  'Then every room event the caller may see, replayed from the database and then live, with no gap and no duplicate at the seam: the SSE event name is the event\u2019s `type`, its data the room event (as the pull feed gives it), its SSE id what to resume after. ' +
  '`: ping` comments keep the connection from looking idle. The stream ends with `end` (`{reason, resume}`): after its maximum lifetime (`resume: true`: open a new one with a new ticket and the last id), or when the session or the membership ends (`resume: false`). ' +
  'Resume with `Last-Event-ID` (what an EventSource sends by itself) or `?lastEventId=`.';


const invalidTicket = (): AppError =>
  new AppError(401, 'invalid_ticket', 'the stream ticket is unknown, used, expired or for another stream; get a new one from POST /api/events/tickets');

export interface EventStreamDeps {
  sessions: SessionStore;
  roomService: RoomService;
  events: { store: EventStore; feed: EventFeed; listener: RoomEventListener };
  /** One read per notification for all of a room's streams on this server. */
  tails: RoomTails;
  tickets: StreamTickets;
  slots: StreamSlots;
  hub: StreamHub;
  settings: Config['streams'];
  logger: Logger;
}

export function eventStreamRoutes(deps: EventStreamDeps): Router {
  const router = Router();
  const { store, feed, listener } = deps.events;

  describeRoute({
    operationId: 'eventStreamTicket',
    method: 'post',
    path: '/api/events/tickets',
    tag: 'events',
    summary: 'A single-use ticket for an event stream',
    description: 'With `roomId`: for that room\u2019s stream (the caller must be a member); without: for the stream of all the caller\u2019s rooms. An EventSource cannot send headers, so the ticket stands in for the session, once, for a few seconds.',
    auth: 'session',
    body: ticketBody,
    bodyRequired: false,
    responses: { 200: eventStreamTicketSchema },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.post('/events/tickets', authenticate(deps.sessions), async (req, res) => {
    const body = parse(ticketBody, req.body ?? {});
    const { session, token } = authOf(res);
    if (body.roomId !== undefined) await deps.roomService.requireMember(body.roomId, session.userId);
    res.json(await deps.tickets.issue({ userId: session.userId, sessionRef: deps.sessions.refOf(token), roomId: body.roomId ?? null }));
  });

  /**
   * Takes the ticket and checks everything that can refuse the stream, so a refusal is still a
   * JSON error with a status; then the response turns into the stream.
   */
  const openStream = async (req: Request, res: Response, roomId: string | null): Promise<void> => {
    const q = parse(streamQuery, req.query, 'query');
    // The header wins: it is what an EventSource sends when it reconnects by itself.
    const requested = req.get('last-event-id') || q.lastEventId || null;
    // The id is checked before the ticket is taken, so a malformed id does not use the ticket up.
    const roomAfter = roomId === null || requested === null ? START : parsePosition(requested);
    if (!roomAfter) throw new AppError(400, 'invalid_cursor', 'Last-Event-ID must be a room position such as "42.3", as the stream\u2019s ids give it');
    const cursor = decodeCursor(roomId === null ? (requested ?? undefined) : undefined);

    const grant = await deps.tickets.redeem(q.ticket);
    if (!grant || grant.roomId !== roomId) throw invalidTicket();
    const [alive] = await deps.sessions.alive([grant.sessionRef]);
    if (!alive) throw new AppError(401, 'unauthenticated', 'session expired or revoked; log in again');

    let source: StreamSource;
    let reset: (StreamResetData & { id: string }) | null = null;
    if (roomId !== null) {
      const { role } = await deps.roomService.requireMember(roomId, grant.userId);
      let after = roomAfter;
      if (await store.beyondHead(roomId, after)) {
        after = START;
        reset = { reason: 'beyond_room', rooms: [roomId], id: formatPosition(START) };
      }
      source = new RoomSource({ store, tails: deps.tails }, roomId, { id: grant.userId, role }, after);
    } else {
      const { rooms: mine, beyond: lost } = await feed.roomsBeyond(grant.userId, cursor);
      for (const room of lost) cursor.delete(room);
      if (lost.length > 0) reset = { reason: 'beyond_room', rooms: lost, id: encodeCursor(cursor) };
      source = new FeedSource({ feed, store, listener }, grant.userId, cursor, mine);
    }

    const streamId = randomUUID();
    if (!(await deps.slots.acquire(grant.userId, streamId))) {
      throw new RateLimitedError('too_many_streams', `at most ${deps.slots.max} event streams may be open at once; close one first`, 5);
    }
    const out = new SseResponse(res);
    out.open(RETRY_MS);
    const log = deps.logger.child({ reqId: res.locals.reqId as string, userId: grant.userId, roomId, streamId });
    const stream = new EventStream({
      source,
      out,
      heartbeatMs: deps.settings.heartbeatMs,
      lifetimeMs: Math.round(deps.settings.maxLifetimeMs * (1 - Math.random() * LIFETIME_SPREAD)),
      onError: (err) => log.warn({ err: (err as Error).message }, 'event stream read failed; retrying'),
      onStop: (why) => {
        deps.hub.stopped(entry, why);
        log.debug({ why }, 'event stream ended');
      },
    });
    const entry = { stream, userId: grant.userId, sessionRef: grant.sessionRef, streamId };
    deps.hub.add(entry);
    log.debug({ requested, reset: reset?.rooms ?? null }, 'event stream opened');
    stream.start({ requested, reset });
  };

  const streamErrors = ['invalid_request', 'invalid_ticket', 'unauthenticated', 'invalid_cursor', 'too_many_streams'] as const;
  const streamHeaders = { 'Last-Event-ID': 'The id of the last event the client holds: the stream resumes right after it (wins over `lastEventId`)' };
  describeRoute({
    operationId: 'roomEventStream',
    method: 'get',
    path: '/api/rooms/:roomId/events/stream',
    tag: 'events',
    summary: 'A room\u2019s events as they happen (SSE)',
    description: `${STREAM_DESCRIPTION} Here the ids are room positions ("<seq>.<n>").`,
    auth: 'ticket',
    params: roomParams,
    query: streamQuery,
    headers: streamHeaders,
    responses: { 200: { description: 'The stream', media: 'text/event-stream' } },
    errors: [...streamErrors, 'room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/events/stream', (req, res) => openStream(req, res, roomIdOf(req)));
  describeRoute({
    operationId: 'eventStream',
    method: 'get',
    path: '/api/events/stream',
    tag: 'events',
    summary: 'The events of all the caller\u2019s rooms as they happen (SSE)',
    description: `${STREAM_DESCRIPTION} Here the ids are opaque cursors, like the \`next\` of GET /api/events.`,
    auth: 'ticket',
    query: streamQuery,
    headers: streamHeaders,
    responses: { 200: { description: 'The stream', media: 'text/event-stream' } },
    errors: streamErrors,
  });
  router.get('/events/stream', (req, res) => openStream(req, res, null));

  return router;
}
