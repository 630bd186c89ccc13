import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { INSTRUCTOR_KINDS, resyncPageSchema, sendMessageRequest, sendMessageResponseSchema, type ResyncPage, type SendMessageRequest, type SendMessageResponse } from '../../../shared/protocol/messages';
import { ForbiddenError } from '../errors';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { MessageStore } from '../messages/message-store';
import type { SendMessage } from '../messages/send-message';
import type { Interactions } from '../interactions';
import type { Logger } from '../logger';
import type { MailStore } from '../mail/mail-store';
import type { Metrics } from '../metrics';
import type { RoomService } from '../rooms/room-service';
import type { Session, SessionStore } from '../sessions/session-store';
import { INTERACTION_ERROR_CODES } from '../../../shared/protocol/errors';
import { roomStateSchema } from '../../../shared/protocol/interactions';
import { roomIdOf, roomParams } from './room-routes';

const resyncQuery = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('The seq up to which the caller holds its room-wide stream (everything, for an instructor; messages to everyone, for a learner)'),
    personalAfter: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The seq up to which the caller holds the rest it may see (a learner\u2019s own messages and those addressed to it); default `after`'),
    limit: z.coerce.number().int().min(1).max(500).default(100).describe('At most this many messages'),
  })
  .strict();

/** A send request, read and checked: the room, the validated body, the caller (who may send its kind). */
export function sendOf(req: Request, res: Response): { roomId: string; body: SendMessageRequest; session: Session } {
  const roomId = roomIdOf(req);
  const parsed = parse(sendMessageRequest, req.body);
  // zod's record rebuilds the object by assignment, and assigning `__proto__` sets the
  // prototype instead of adding the key: the key would vanish. Send the object JSON.parse
  // made (own properties only, vetted by jsonGuard) so the body round-trips exactly.
  const body = { ...parsed, body: (req.body as { body: Record<string, unknown> }).body };
  const { session } = authOf(res);
  if (session.role !== 'instructor' && INSTRUCTOR_KINDS.includes(body.kind)) {
    throw new ForbiddenError('instructor_only_kind', `only instructors send "${body.kind}" messages; send a chat or a question`);
  }
  return { roomId, body, session };
}

export function messageRoutes(deps: {
  sessions: SessionStore;
  roomService: RoomService;
  messages: MessageStore;
  sendMessage: SendMessage;
  metrics: Metrics;
  interactions: Interactions;
  /** Told that a member opened the room (a page resyncs when it opens): reminders count from it. */
  visits: Pick<MailStore, 'visited'>;
  logger: Logger;
}): Router {
  const router = Router();
  router.use('/rooms/:roomId/messages', authenticate(deps.sessions));

  describeRoute({
    operationId: 'sendMessage',
    method: 'post',
    path: '/api/rooms/:roomId/messages',
    tag: 'messages',
    summary: 'Send a message',
    description:
      'The 201 comes once the message is stored (durable); it is then published to the room\u2019s STOMP subscribers. Idempotent per `clientMsgId`: a retry with the same key and content answers the stored message again, with `Idempotent-Replayed: true`; the same key with other content is a 409 `idempotency_conflict`. Retry after a timeout or a 5xx with the same body.',
    auth: 'session',
    params: roomParams,
    body: sendMessageRequest,
    responses: {
      201: {
        description: 'Stored (or, on a replay, stored before)',
        json: sendMessageResponseSchema,
        headers: { 'Idempotent-Replayed': '`true` when this answers an earlier send with the same `clientMsgId` (nothing new was stored); absent otherwise' },
      },
    },
    errors: [
      'room_not_found',
      'not_a_member',
      'forbidden',
      'instructor_only_kind',
      'recipient_not_found',
      'idempotency_conflict',
      'body_too_large',
      ...INTERACTION_ERROR_CODES,
    ],
  });
  router.post('/rooms/:roomId/messages', async (req, res) => {
    const stop = deps.metrics.sendLatency.startTimer();
    const { roomId, body, session } = sendOf(req, res);
    // An action is an interaction (a poll, a hand, the view): checked against the room's log and its rules first.
    const { message, replayed } =
      body.kind === 'action'
        ? await deps.interactions.send(roomId, { userId: session.userId, role: (await deps.roomService.requireMember(roomId, session.userId)).role }, body)
        : await deps.sendMessage.send(roomId, session.userId, body);
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.status(201).json({ id: message.id, seq: message.seq, message } satisfies SendMessageResponse);
    stop();
  });

  router.use('/rooms/:roomId/state', authenticate(deps.sessions));
  describeRoute({
    operationId: 'roomState',
    method: 'get',
    path: '/api/rooms/:roomId/state',
    tag: 'messages',
    summary: 'The room\u2019s interactive state now: the shown step, polls, raised hands, the question board',
    description:
      'Folded from the room\u2019s log as the caller may see it (a learner gets no individual answers of others, no tally before the reveal, no private question of another). `through`: the state holds every message up to this seq; apply live messages after it with the same fold (`shared/protocol/room-state.ts`), so a page that joins late shows what one that watched live shows.',
    auth: 'session',
    params: roomParams,
    responses: { 200: roomStateSchema },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/state', async (req, res) => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    const { role } = await deps.roomService.requireMember(roomId, userId);
    res.json({ state: await deps.interactions.state(roomId, { userId, role }) });
  });

  /** Resync: what the caller may see after its cursors, in seq order, `limit` at a time, and up to where that is complete. */
  describeRoute({
    operationId: 'resync',
    method: 'get',
    path: '/api/rooms/:roomId/messages',
    tag: 'messages',
    summary: 'Resync: the messages after the caller\u2019s cursors',
    description:
      'What the caller may see (an instructor: everything; a learner: messages to everyone, its own, and those addressed to it) after its cursors, in seq order. Page with `nextAfter` while `hasMore`; `through` says up to which seq the walk is complete, so a client never skips a message published late.',
    auth: 'session',
    params: roomParams,
    query: resyncQuery,
    responses: { 200: resyncPageSchema },
    errors: ['invalid_request', 'room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/messages', async (req, res) => {
    const roomId = roomIdOf(req);
    const q = parse(resyncQuery, req.query, 'query');
    const userId = authOf(res).session.userId;
    const { role } = await deps.roomService.requireMember(roomId, userId);
    deps.metrics.resyncCalls.inc();
    deps.visits.visited(userId, roomId).catch((err: unknown) => deps.logger.warn({ err: (err as Error).message }, 'recording a room visit failed'));
    const { messages, hasMore, through, broadcastThrough } = await deps.messages.listAfter({
      roomId,
      userId,
      role,
      afterSeq: q.after,
      personalAfterSeq: q.personalAfter ?? q.after,
      limit: q.limit,
    });
    const page: ResyncPage = { messages, hasMore, nextAfter: messages.at(-1)?.seq ?? q.after, through, broadcastThrough };
    res.json(page);
  });

  return router;
}
