/**
 * Bulk announcements by e-mail (docs/campaigns.md): instructors start one to the rooms they
 * teach and follow, pause, resume or cancel it; the operators' API does the same for any room
 * (or every room). The same operations under both prefixes, told apart only by who asks.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { campaignListSchema, campaignRecipientsSchema, campaignResponseSchema, RECIPIENT_STATES } from '../../../shared/protocol/campaigns';
import { isUuid } from '../../../shared/protocol/routing';
import type { ErrorCode } from '../../../shared/protocol/errors';
import { MAX_ROOMS, type Actor, type Campaigns } from '../campaigns';
import { NotFoundError } from '../errors';
import { requireAdmin } from '../http/admin-auth';
import { describeRoute, type Auth } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { SessionStore } from '../sessions/session-store';

// Control characters would garble a subject (a line break starts a header) or hide in the text; tabs and line breaks are text's own.
const subject = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((v) => !/[\p{Cc}\u2028\u2029]/u.test(v), 'no control characters or line breaks in a subject')
  .describe('The mail\u2019s subject');
const text = z
  .string()
  .trim()
  .min(1)
  .max(20_000)
  .refine((v) => !/[\p{Cc}]/u.test(v.replace(/[\t\r\n]/g, '')), 'no control characters other than tabs and line breaks')
  .describe('The announcement, plain text; the `announcement` mail template frames it');
const idempotencyKey = z.string().regex(/^[\x21-\x7e]{1,100}$/, 'Idempotency-Key: 1 to 100 visible ASCII characters');
const roomIds = z.array(z.guid()).min(1).max(MAX_ROOMS).describe(`The rooms whose members get it (at most ${MAX_ROOMS}); each member once`);

const createBody = z.object({ roomIds, subject, text }).strict();
const adminCreateBody = z
  .object({ roomIds: roomIds.optional(), allRooms: z.literal(true).optional().describe('Every room there is, instead of `roomIds`'), subject, text })
  .strict()
  .refine((b) => (b.roomIds === undefined) !== (b.allRooms === undefined), 'give either roomIds or allRooms: true');
const listQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(200).default(50), roomId: z.guid().optional().describe('Only the campaigns that mail this room') })
  .strict();
const recipientsQuery = z
  .object({ state: z.enum(RECIPIENT_STATES).optional().describe('Only recipients in this state'), limit: z.coerce.number().int().min(1).max(1000).default(100) })
  .strict();
const campaignParams = z.object({ campaignId: z.guid().describe('The campaign (a malformed id is a 404 `not_found`)') });

function campaignIdOf(req: Request): string {
  const id = String(req.params.campaignId ?? '');
  if (!isUuid(id)) throw new NotFoundError('not_found', 'no such campaign');
  return id;
}

interface Surface {
  prefix: '/campaigns' | '/admin/campaigns';
  auth: Auth;
  idPrefix: '' | 'admin';
  actor: (res: Response) => Actor;
  tag: string;
}

export function campaignRoutes(deps: { sessions: SessionStore; campaigns: Campaigns; adminToken: string | null }): Router {
  const router = Router();
  const { campaigns } = deps;
  router.use('/campaigns', authenticate(deps.sessions));
  router.use('/admin/campaigns', requireAdmin(deps.adminToken));

  const surfaces: Surface[] = [
    { prefix: '/campaigns', auth: 'session', idPrefix: '', actor: (res) => ({ userId: authOf(res).session.userId }), tag: 'campaigns' },
    { prefix: '/admin/campaigns', auth: 'admin', idPrefix: 'admin', actor: () => 'operators', tag: 'operations' },
  ];

  for (const s of surfaces) {
    const op = (name: string): string => (s.idPrefix === '' ? name : `admin${name[0]?.toUpperCase()}${name.slice(1)}`);
    const who = s.auth === 'admin' ? 'the operators, for any room' : 'an instructor of every room';
    const notFound: ErrorCode[] = ['not_found'];

    describeRoute({
      operationId: op('createCampaign'),
      method: 'post',
      path: `/api${s.prefix}`,
      tag: s.tag,
      summary: `Send an announcement by e-mail to rooms (${who})`,
      description:
        'Every member of the rooms with a verified address (the sender aside) gets one mail, from the `announcement` template, with one-click unsubscribe headers. Sending paces itself: under the rate ceilings, and held back by the load gate while the mail server is loaded or failing (then paused at the deadline, and resumed when it recovers). Members who unsubscribed from the room or whose address bounced are skipped (`suppressed`). 422 `no_recipients` when nobody has an address.',
      auth: s.auth,
      headers: { 'Idempotency-Key': 'Optional; the same key again (after a timeout, say) answers the campaign the first request started instead of starting another' },
      body: s.auth === 'admin' ? adminCreateBody : createBody,
      responses: {
        201: {
          description: 'Started (or, on a replay, started before)',
          json: campaignResponseSchema,
          headers: { 'Idempotent-Replayed': '`true` when this answers an earlier request with the same `Idempotency-Key`; absent otherwise' },
        },
      },
      errors: s.auth === 'admin' ? ['room_not_found', 'no_recipients'] : ['room_not_found', 'not_a_member', 'forbidden', 'no_recipients', 'too_many_campaigns'],
    });
    router.post(s.prefix, async (req, res) => {
      const actor = s.actor(res);
      const body = actor === 'operators' ? parse(adminCreateBody, req.body) : parse(createBody, req.body);
      const rooms = 'allRooms' in body && body.allRooms ? 'all' : (body.roomIds ?? []);
      const key = req.get('idempotency-key');
      const { campaign, replayed } = await campaigns.create(actor, {
        roomIds: rooms,
        subject: body.subject,
        text: body.text,
        ...(key === undefined ? {} : { idempotencyKey: parse(idempotencyKey, key) }),
      });
      if (replayed) res.set('Idempotent-Replayed', 'true');
      res.status(201).json({ campaign });
    });

    describeRoute({
      operationId: op('listCampaigns'),
      method: 'get',
      path: `/api${s.prefix}`,
      tag: s.tag,
      summary: s.auth === 'admin' ? 'Every campaign, newest first' : 'The campaigns you can steer (as an instructor of every one of their rooms), newest first',
      auth: s.auth,
      query: listQuery,
      responses: { 200: campaignListSchema },
    });
    router.get(s.prefix, async (req, res) => {
      const { limit, roomId } = parse(listQuery, req.query);
      res.json({ campaigns: await campaigns.list(s.actor(res), { limit, ...(roomId === undefined ? {} : { roomId }) }) });
    });

    describeRoute({
      operationId: op('getCampaign'),
      method: 'get',
      path: `/api${s.prefix}/:campaignId`,
      tag: s.tag,
      summary: 'A campaign and its progress: recipients in each state, the pace, and why it waits or is paused',
      auth: s.auth,
      params: campaignParams,
      responses: { 200: campaignResponseSchema },
      errors: notFound,
    });
    router.get(`${s.prefix}/:campaignId`, async (req, res) => {
      res.json({ campaign: await campaigns.get(s.actor(res), campaignIdOf(req)) });
    });

    describeRoute({
      operationId: op('campaignRecipients'),
      method: 'get',
      path: `/api${s.prefix}/:campaignId/recipients`,
      tag: s.tag,
      summary: 'Where each recipient is, with the mail server\u2019s last answer',
      auth: s.auth,
      params: campaignParams,
      query: recipientsQuery,
      responses: { 200: campaignRecipientsSchema },
      errors: notFound,
    });
    router.get(`${s.prefix}/:campaignId/recipients`, async (req, res) => {
      const id = campaignIdOf(req);
      const q = parse(recipientsQuery, req.query);
      res.json({ recipients: await campaigns.recipients(s.actor(res), id, { limit: q.limit, ...(q.state ? { state: q.state } : {}) }) });
    });

    const actions = {
      pause: 'Pause: nothing more is sent until it is resumed (a batch being sent finishes)',
      resume: 'Resume from where it stopped: only recipients not yet sent, failed or skipped get mail',
      cancel: 'Cancel: recipients not yet sent never are',
    } as const;
    for (const action of Object.keys(actions) as (keyof typeof actions)[]) {
      describeRoute({
        operationId: op(`${action}Campaign`),
        method: 'post',
        path: `/api${s.prefix}/:campaignId/${action}`,
        tag: s.tag,
        summary: actions[action],
        description: '409 `campaign_state_conflict` from a state that does not allow it (resuming a running, cancelling a finished campaign, …).',
        auth: s.auth,
        params: campaignParams,
        responses: { 200: campaignResponseSchema },
        errors: ['not_found', 'campaign_state_conflict'],
      });
      router.post(`${s.prefix}/:campaignId/${action}`, async (req, res) => {
        res.json({ campaign: await campaigns[action](s.actor(res), campaignIdOf(req)) });
      });
    }
  }
  return router;
}
