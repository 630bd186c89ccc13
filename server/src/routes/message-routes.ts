import { Router } from 'express';
import { z } from 'zod';
import { INSTRUCTOR_KINDS, sendMessageRequest, type ResyncPage } from '../../../shared/protocol/messages';
import { ForbiddenError } from '../errors';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { MessageStore } from '../messages/message-store';
import type { SendMessage } from '../messages/send-message';
import type { Logger } from '../logger';
import type { MailStore } from '../mail/mail-store';
import type { Metrics } from '../metrics';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf } from './room-routes';

const resyncQuery = z
  .object({
    after: z.coerce.number().int().min(0).default(0),
    personalAfter: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

export function messageRoutes(deps: {
  sessions: SessionStore;
  roomService: RoomService;
  messages: MessageStore;
  sendMessage: SendMessage;
  metrics: Metrics;
  /** Told that a member opened the room (a page resyncs when it opens): reminders count from it. */
  visits: Pick<MailStore, 'visited'>;
  logger: Logger;
}): Router {
  const router = Router();
  router.use('/rooms/:roomId/messages', authenticate(deps.sessions));

  router.post('/rooms/:roomId/messages', async (req, res) => {
    const stop = deps.metrics.sendLatency.startTimer();
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
    const { message, replayed } = await deps.sendMessage.send(roomId, session.userId, body);
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.status(201).json({ id: message.id, seq: message.seq, message });
    stop();
  });

  /** Resync: what the caller may see after its cursors, in seq order, `limit` at a time, and up to where that is complete. */
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
