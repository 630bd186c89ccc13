/**
 * The mail channel's HTTP side: each member's choice of mail per room, one-click unsubscribe
 * (RFC 8058) and the operators' view of the mail queues.
 *
 * Unsubscribe needs no login: the link is signed. A GET only shows a page with a button, since
 * mail scanners fetch links on their own; the POST (the button, or a mail client's one-click
 * `List-Unsubscribe=One-Click`) turns the room's mail off.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { mailReportSchema, type MailReport } from '../../../shared/protocol/operations';
import { isUuid } from '../../../shared/protocol/routing';
import { AppError } from '../errors';
import { requireAdmin } from '../http/admin-auth';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import { parse } from '../http/validate';
import type { MailChannel } from '../mail/mail-channel';
import { validUnsubscribe } from '../mail/mail-links';
import { NOTIFY_MODES } from '../mail/mail-store';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf, roomParams } from './room-routes';
import { escapeHtml, sendPage } from '../http/html-page';

const modeBody = z
  .object({ mode: z.enum(NOTIFY_MODES).describe('`immediate` (the default): a mail per message that concerns the member, at once, while offline; `hourly`, `daily`: one digest per window; `off`: nothing') })
  .strict()
  .describe('Which mail a member gets about one room');
const unsubscribeQuery = z
  .object({ u: z.string().describe('The user'), r: z.string().describe('The room'), t: z.string().max(100).describe('The link\u2019s signature') })
  .strict();



/**
 * The links in mails. Mounted before the JSON body guard: a mail client's one-click POST sends
 * `application/x-www-form-urlencoded`, and everything these routes need is in the signed URL.
 */
export function mailLinkRoutes(deps: { mail: MailChannel }): Router {
  const router = Router();
  const { store } = deps.mail;

  /** The user and room of a valid unsubscribe link, or a 400 that says the link is bad. */
  const unsubscribing = (req: Request): { userId: string; roomId: string } => {
    const q = unsubscribeQuery.safeParse(req.query);
    if (!q.success || !isUuid(q.data.u) || !isUuid(q.data.r) || !validUnsubscribe(deps.mail.links, q.data.u, q.data.r, q.data.t)) {
      throw new AppError(400, 'invalid_link', 'this unsubscribe link is not valid; use the one in your most recent mail');
    }
    return { userId: q.data.u, roomId: q.data.r };
  };

  describeRoute({
    operationId: 'unsubscribePage',
    method: 'get',
    path: '/api/mail/unsubscribe',
    tag: 'mail',
    summary: 'The unsubscribe link of a mail: a page with a button',
    description: 'Changes nothing (mail scanners fetch links); the button POSTs to the same URL. The link is signed: no login.',
    auth: 'none',
    query: unsubscribeQuery,
    responses: { 200: { description: 'A page asking to confirm', media: 'text/html' } },
    errors: ['invalid_link'],
  });
  router.get('/mail/unsubscribe', async (req, res) => {
    const { roomId } = unsubscribing(req);
    const room = (await store.roomName(roomId)) ?? 'this room';
    sendPage(
      res,
      'Unsubscribe',
      `<p>Stop all mail about <strong>${escapeHtml(room)}</strong>?</p><form method="post" action="${escapeHtml(req.originalUrl)}"><button type="submit">Unsubscribe</button></form>`,
    );
  });

  describeRoute({
    operationId: 'unsubscribe',
    method: 'post',
    path: '/api/mail/unsubscribe',
    tag: 'mail',
    summary: 'Unsubscribe from a room\u2019s mail (RFC 8058 one-click)',
    description:
      'Turns the room\u2019s mail off for the user of the signed link. A mail client\u2019s one-click POST sends `List-Unsubscribe=One-Click` as a form; the body is not read.',
    auth: 'none',
    query: unsubscribeQuery,
    responses: { 200: { description: 'A page saying it is done', media: 'text/html' } },
    errors: ['invalid_link'],
  });
  router.post('/mail/unsubscribe', async (req, res) => {
    const { userId, roomId } = unsubscribing(req);
    await store.setMode(userId, roomId, 'off');
    sendPage(res, 'Unsubscribed', '<p>You will get no more mail about this room. You can turn it on again in the room.</p>');
  });

  return router;
}

export function mailRoutes(deps: { sessions: SessionStore; roomService: RoomService; mail: MailChannel; adminToken: string | null }): Router {
  const router = Router();
  const { store } = deps.mail;

  router.use('/rooms/:roomId/notifications', authenticate(deps.sessions));

  describeRoute({
    operationId: 'notificationMode',
    method: 'get',
    path: '/api/rooms/:roomId/notifications',
    tag: 'mail',
    summary: 'My mail about this room',
    auth: 'session',
    params: roomParams,
    responses: { 200: modeBody },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.get('/rooms/:roomId/notifications', async (req, res) => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    await deps.roomService.requireMember(roomId, userId);
    res.json({ mode: await store.mode(userId, roomId) });
  });

  describeRoute({
    operationId: 'setNotificationMode',
    method: 'put',
    path: '/api/rooms/:roomId/notifications',
    tag: 'mail',
    summary: 'Choose my mail about this room',
    description: 'Only a verified address (PUT /api/account/email) gets mail.',
    auth: 'session',
    params: roomParams,
    body: modeBody,
    responses: { 200: modeBody },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.put('/rooms/:roomId/notifications', async (req, res) => {
    const roomId = roomIdOf(req);
    const { mode } = parse(modeBody, req.body);
    const userId = authOf(res).session.userId;
    await deps.roomService.requireMember(roomId, userId);
    await store.setMode(userId, roomId, mode);
    res.json({ mode });
  });

  /** The operators' API: off unless ROOMCAST_ADMIN_TOKEN is set; then only with that token. */
  router.use('/admin', requireAdmin(deps.adminToken));

  describeRoute({
    operationId: 'mailReport',
    method: 'get',
    path: '/api/admin/mail',
    tag: 'operations',
    summary: 'The mail queues, failures, suppressions and template problems',
    auth: 'admin',
    responses: { 200: mailReportSchema },
  });
  router.get('/admin/mail', async (_req, res) => {
    const [queues, failed, suppressions] = await Promise.all([deps.mail.stats(), deps.mail.mail.failed(50), store.suppressions(50)]);
    const failures = failed.map((j) => ({ id: j.id, to: j.payload.to, type: j.payload.type, attempts: j.attempts, error: j.lastError, failedAt: j.finishedAt }));
    res.json({ queues, failures, suppressions, templateProblems: deps.mail.templates.problems() } satisfies MailReport);
  });

  describeRoute({
    operationId: 'unsuppress',
    method: 'delete',
    path: '/api/admin/mail/suppressions/:email',
    tag: 'operations',
    summary: 'Mail an address again',
    description: 'Takes the address off the suppression list (addresses that bounced or complained get no mail).',
    auth: 'admin',
    params: z.object({ email: z.string().describe('The suppressed address (any case)') }),
    responses: { 204: null },
    errors: ['not_found'],
  });
  router.delete('/admin/mail/suppressions/:email', async (req, res) => {
    const email = String(req.params.email);
    if (!(await store.unsuppress(email))) throw new AppError(404, 'not_found', `${email} is not suppressed`);
    res.status(204).end();
  });

  return router;
}
