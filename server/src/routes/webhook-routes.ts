/**
 * Webhook endpoints of a room (docs/webhooks.md): only the room's instructors see and manage
 * them; learners own none. Delivery itself is the dispatcher's (server/src/webhooks/).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { EVENT_TYPES } from '../../../shared/protocol/events';
import { isUuid } from '../../../shared/protocol/routing';
import { ForbiddenError, NotFoundError } from '../errors';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import type { WebhookChannel } from '../webhooks';
import { roomIdOf } from './room-routes';

const url = z.string().trim().min(1).max(2048);
const eventTypes = z
  .array(z.enum(EVENT_TYPES))
  .min(1)
  .max(EVENT_TYPES.length * 2)
  .transform((types) => [...new Set(types)]);
const description = z.string().trim().max(500);

const createBody = z.object({ url, eventTypes, description: description.default('') }).strict();
const patchBody = z
  .object({ url, eventTypes, description, enabled: z.boolean() })
  .partial()
  .strict()
  .refine((p) => Object.keys(p).length > 0, 'give at least one of url, eventTypes, description, enabled');
const replayBody = z.object({ after: z.union([z.number().int().min(0), z.string().max(40)]) }).strict();
const attemptsQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.coerce.number().int().positive().optional() })
  .strict();

function webhookIdOf(req: Request): string {
  const id = String(req.params.webhookId ?? '');
  if (!isUuid(id)) throw new NotFoundError('not_found', 'no such webhook in this room');
  return id;
}

export function webhookRoutes(deps: { sessions: SessionStore; roomService: RoomService; webhooks: WebhookChannel }): Router {
  const router = Router();
  const { webhooks } = deps;
  router.use('/rooms/:roomId/webhooks', authenticate(deps.sessions));

  /** The room and the caller, once the caller is known to be one of its instructors. */
  const instructor = async (req: Request, res: Response): Promise<{ roomId: string; userId: string }> => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    const { role } = await deps.roomService.requireMember(roomId, userId);
    if (role !== 'instructor') throw new ForbiddenError('forbidden', "only the room's instructors have webhooks");
    return { roomId, userId };
  };

  router.post('/rooms/:roomId/webhooks', async (req, res) => {
    const { roomId, userId } = await instructor(req, res);
    const body = parse(createBody, req.body);
    res.status(201).json({ endpoint: await webhooks.create(roomId, userId, body) });
  });

  router.get('/rooms/:roomId/webhooks', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json({ endpoints: await webhooks.list(roomId) });
  });

  router.get('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json({ endpoint: await webhooks.get(roomId, webhookIdOf(req)) });
  });

  router.patch('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId, userId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const patch = parse(patchBody, req.body);
    res.json({ endpoint: await webhooks.update(roomId, id, userId, patch) });
  });

  router.delete('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId } = await instructor(req, res);
    await webhooks.remove(roomId, webhookIdOf(req));
    res.status(204).end();
  });

  router.post('/rooms/:roomId/webhooks/:webhookId/rotate-secret', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json(await webhooks.rotateSecret(roomId, webhookIdOf(req)));
  });

  router.get('/rooms/:roomId/webhooks/:webhookId/attempts', async (req, res) => {
    const { roomId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const q = parse(attemptsQuery, req.query, 'query');
    res.json({ attempts: await webhooks.attempts(roomId, id, q.limit, q.before) });
  });

  router.post('/rooms/:roomId/webhooks/:webhookId/replay', async (req, res) => {
    const { roomId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const { after } = parse(replayBody, req.body);
    res.status(202).json({ endpoint: await webhooks.replay(roomId, id, after) });
  });

  return router;
}
