/**
 * Webhook endpoints of a room (docs/webhooks.md): only the room's instructors see and manage
 * them; learners own none. Delivery itself is the dispatcher's (server/src/webhooks/).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { EVENT_TYPES } from '../../../shared/protocol/events';
import { roomEventSchema } from '../../../shared/protocol/schemas';
import { isUuid } from '../../../shared/protocol/routing';
import { createdWebhookSchema, rotatedSecretSchema, webhookAttemptsSchema, webhookListSchema, webhookSchema } from '../../../shared/protocol/webhooks';
import { ForbiddenError, NotFoundError } from '../errors';
import { describeRoute, describeWebhook } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import type { WebhookChannel } from '../webhooks';
import { roomIdOf, roomParams } from './room-routes';

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

/** The path parameters of one endpoint (for the API's description). */
const webhookParams = roomParams.extend({ webhookId: z.guid().describe('The endpoint (a malformed id is a 404 `not_found`)') });

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

  describeWebhook({
    name: 'roomEvent',
    summary: 'A room event, delivered to a registered endpoint',
    description:
      'POSTed per Standard Webhooks: verify `webhook-signature` over `<webhook-id>.<webhook-timestamp>.<body>` with the endpoint\u2019s secret (a library such as `standardwebhooks` does it) and refuse old timestamps. Delivered at least once, in the room\u2019s order: a later event waits while an earlier one is retried, so dedupe by `webhook-id`, which stays the same across retries and replays. Retries follow the schedule (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, with jitter); an event that exhausts it is recorded failed and no longer blocks the room. An endpoint failing for 5 days (by default) is disabled and its owner mailed.',
    body: roomEventSchema,
    headers: {
      'webhook-id': 'The event\u2019s id: the same for every attempt and replay',
      'webhook-timestamp': 'When this attempt was signed, in seconds since the epoch',
      'webhook-signature': 'Space-separated `v1,<base64 HMAC-SHA256>` signatures, one per live secret (two while a rotation overlaps)',
    },
    responses: {
      '2XX': 'Delivered: the next event follows',
      '410': 'Gone: the endpoint is disabled at once (re-enable it with PATCH `enabled: true`; delivery resumes where it stopped)',
      '429': 'Retried after `Retry-After` when given, else on the schedule',
      '503': 'Retried after `Retry-After` when given, else on the schedule',
      default: 'Failed (as are a timeout and a refused connection): retried on the schedule',
    },
  });
  describeRoute({
    operationId: 'createWebhook',
    method: 'post',
    path: '/api/rooms/:roomId/webhooks',
    tag: 'webhooks',
    summary: 'Register a webhook endpoint (the room\u2019s instructors)',
    description:
      'It gets the room\u2019s events from now on, in the room\u2019s order, each POSTed as JSON (a room event) and signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret in this answer, which is shown only here. Targets must be https and resolve to public addresses. A room has at most 10 endpoints (409 `too_many_webhooks`).',
    auth: 'session',
    params: roomParams,
    body: createBody,
    responses: { 201: createdWebhookSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'webhook_url_invalid', 'webhook_target_forbidden', 'webhook_target_unresolvable', 'too_many_webhooks'],
  });
  router.post('/rooms/:roomId/webhooks', async (req, res) => {
    const { roomId, userId } = await instructor(req, res);
    const body = parse(createBody, req.body);
    res.status(201).json({ endpoint: await webhooks.create(roomId, userId, body) });
  });

  describeRoute({
    operationId: 'listWebhooks',
    method: 'get',
    path: '/api/rooms/:roomId/webhooks',
    tag: 'webhooks',
    summary: 'The room\u2019s webhook endpoints',
    auth: 'session',
    params: roomParams,
    responses: { 200: webhookListSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden'],
  });
  router.get('/rooms/:roomId/webhooks', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json({ endpoints: await webhooks.list(roomId) });
  });

  describeRoute({
    operationId: 'getWebhook',
    method: 'get',
    path: '/api/rooms/:roomId/webhooks/:webhookId',
    tag: 'webhooks',
    summary: 'One webhook endpoint',
    auth: 'session',
    params: webhookParams,
    responses: { 200: webhookSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found'],
  });
  router.get('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json({ endpoint: await webhooks.get(roomId, webhookIdOf(req)) });
  });

  describeRoute({
    operationId: 'updateWebhook',
    method: 'patch',
    path: '/api/rooms/:roomId/webhooks/:webhookId',
    tag: 'webhooks',
    summary: 'Change, pause or resume an endpoint',
    description:
      'Changes its URL, event types or description; `enabled: false` pauses delivery, `enabled: true` resumes it from where it stopped, so nothing is lost while it was off. An endpoint disabled because its owner is no longer an instructor of the room (`disabledReason: "owner_left"`) cannot be resumed (409 `webhook_owner_left`): its URL and secret are the former member\u2019s, so create a new endpoint instead.',
    auth: 'session',
    params: webhookParams,
    body: patchBody,
    responses: { 200: webhookSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found', 'webhook_url_invalid', 'webhook_target_forbidden', 'webhook_target_unresolvable', 'webhook_owner_left'],
  });
  router.patch('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId, userId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const patch = parse(patchBody, req.body);
    res.json({ endpoint: await webhooks.update(roomId, id, userId, patch) });
  });

  describeRoute({
    operationId: 'deleteWebhook',
    method: 'delete',
    path: '/api/rooms/:roomId/webhooks/:webhookId',
    tag: 'webhooks',
    summary: 'Delete an endpoint',
    auth: 'session',
    params: webhookParams,
    responses: { 204: null },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found'],
  });
  router.delete('/rooms/:roomId/webhooks/:webhookId', async (req, res) => {
    const { roomId } = await instructor(req, res);
    await webhooks.remove(roomId, webhookIdOf(req));
    res.status(204).end();
  });

  describeRoute({
    operationId: 'rotateWebhookSecret',
    method: 'post',
    path: '/api/rooms/:roomId/webhooks/:webhookId/rotate-secret',
    tag: 'webhooks',
    summary: 'A new signing secret',
    description:
      'Deliveries are signed with both the new and the previous secret until `previousSecretExpiresAt`, so a receiver can switch without losing any.',
    auth: 'session',
    params: webhookParams,
    responses: { 200: rotatedSecretSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found'],
  });
  router.post('/rooms/:roomId/webhooks/:webhookId/rotate-secret', async (req, res) => {
    const { roomId } = await instructor(req, res);
    res.json(await webhooks.rotateSecret(roomId, webhookIdOf(req)));
  });

  describeRoute({
    operationId: 'webhookAttempts',
    method: 'get',
    path: '/api/rooms/:roomId/webhooks/:webhookId/attempts',
    tag: 'webhooks',
    summary: 'The endpoint\u2019s recent delivery attempts',
    description:
      'Newest first, with the receiver\u2019s status and response time; page back with `before` (an attempt\u2019s `id`).',
    auth: 'session',
    params: webhookParams,
    query: attemptsQuery,
    responses: { 200: webhookAttemptsSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found', 'invalid_request'],
  });
  router.get('/rooms/:roomId/webhooks/:webhookId/attempts', async (req, res) => {
    const { roomId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const q = parse(attemptsQuery, req.query, 'query');
    res.json({ attempts: await webhooks.attempts(roomId, id, q.limit, q.before) });
  });

  describeRoute({
    operationId: 'replayWebhook',
    method: 'post',
    path: '/api/rooms/:roomId/webhooks/:webhookId/replay',
    tag: 'webhooks',
    summary: 'Deliver again from a point',
    description:
      'Delivers again every event after `after`: a message seq (everything after that message) or a room position ("42.3"), no later than the room\u2019s head. Events keep their ids (`webhook-id`), so a receiver that dedupes by it can tell what it had. A later point skips ahead.',
    auth: 'session',
    params: webhookParams,
    body: replayBody,
    responses: { 202: webhookSchema },
    errors: ['room_not_found', 'not_a_member', 'forbidden', 'not_found', 'invalid_cursor'],
  });
  router.post('/rooms/:roomId/webhooks/:webhookId/replay', async (req, res) => {
    const { roomId } = await instructor(req, res);
    const id = webhookIdOf(req);
    const { after } = parse(replayBody, req.body);
    res.status(202).json({ endpoint: await webhooks.replay(roomId, id, after) });
  });

  return router;
}
