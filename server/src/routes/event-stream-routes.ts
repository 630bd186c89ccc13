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
import { isUuid } from '../../../shared/protocol/routing';
import { AppError, RateLimitedError } from '../errors';
import { decodeCursor, encodeCursor, type EventFeed } from '../events/event-feed';
import type { EventStore } from '../events/event-store';
import { EventStream } from '../events/event-stream';
import type { RoomEventListener } from '../events/room-event-listener';
import { SseResponse } from '../events/sse-response';
import type { StreamHub } from '../events/stream-hub';
import type { StreamSlots } from '../events/stream-slots';
import { FeedSource, RoomSource, type StreamSource } from '../events/stream-sources';
import type { StreamTickets } from '../events/stream-tickets';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { Logger } from '../logger';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf } from './room-routes';

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

const beyond = (p: RoomPosition, head: RoomPosition): boolean => p.seq > head.seq || p.n > head.n;

const invalidTicket = (): AppError =>
  new AppError(401, 'invalid_ticket', 'the stream ticket is unknown, used, expired or for another stream; get a new one from POST /api/events/tickets');

export interface EventStreamDeps {
  sessions: SessionStore;
  roomService: RoomService;
  events: { store: EventStore; feed: EventFeed; listener: RoomEventListener };
  tickets: StreamTickets;
  slots: StreamSlots;
  hub: StreamHub;
  settings: Config['streams'];
  logger: Logger;
}

export function eventStreamRoutes(deps: EventStreamDeps): Router {
  const router = Router();
  const { store, feed, listener } = deps.events;

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
    const grant = await deps.tickets.redeem(q.ticket);
    if (!grant || grant.roomId !== roomId) throw invalidTicket();
    const [alive] = await deps.sessions.alive([grant.sessionRef]);
    if (!alive) throw new AppError(401, 'unauthenticated', 'session expired or revoked; log in again');
    // The header wins: it is what an EventSource sends when it reconnects by itself.
    const requested = req.get('last-event-id') || q.lastEventId || null;

    let source: StreamSource;
    let reset: (StreamResetData & { id: string }) | null = null;
    if (roomId !== null) {
      const { role } = await deps.roomService.requireMember(roomId, grant.userId);
      let after = requested === null ? START : parsePosition(requested);
      if (!after) throw new AppError(400, 'invalid_cursor', 'Last-Event-ID must be a room position such as "42.3", as the stream\u2019s ids give it');
      const head = (await store.heads([roomId])).get(roomId) ?? START;
      if (beyond(after, head)) {
        after = START;
        reset = { reason: 'beyond_room', rooms: [roomId], id: formatPosition(START) };
      }
      source = new RoomSource({ store, listener }, roomId, { id: grant.userId, role }, after);
    } else {
      const cursor = decodeCursor(requested ?? undefined);
      const mine = new Set((await store.roomsOf(grant.userId)).map((r) => r.roomId));
      const heads = await store.heads([...cursor.keys()].filter((r) => mine.has(r)));
      const lost = [...heads].filter(([room, head]) => beyond(cursor.get(room) as RoomPosition, head)).map(([room]) => room);
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

  router.get('/rooms/:roomId/events/stream', (req, res) => openStream(req, res, roomIdOf(req)));
  router.get('/events/stream', (req, res) => openStream(req, res, null));

  return router;
}
