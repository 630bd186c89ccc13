/**
 * The HTTP side of inbound mail: a member revokes the reply and command addresses their mails
 * about a room carry (a mail forwarded to the wrong person, a shared mailbox). The next
 * notification carries new ones.
 */
import { Router } from 'express';
import { z } from 'zod';
import { describeRoute } from '../http/api-spec';
import { authOf, authenticate } from '../http/authenticate';
import type { InboundAddresses } from '../mail/inbound-addresses';
import type { RoomService } from '../rooms/room-service';
import type { SessionStore } from '../sessions/session-store';
import { roomIdOf, roomParams } from './room-routes';

const revokedSchema = z
  .object({ revoked: z.number().int().min(0).describe('How many addresses stopped working (0 when there were none)') })
  .describe('The caller\u2019s reply and command addresses for the room are revoked');

export function inboundMailRoutes(deps: { sessions: SessionStore; roomService: RoomService; addresses: Pick<InboundAddresses, 'revoke'> }): Router {
  const router = Router();
  router.use('/rooms/:roomId/mail-addresses', authenticate(deps.sessions));

  describeRoute({
    operationId: 'revokeMailAddresses',
    method: 'delete',
    path: '/api/rooms/:roomId/mail-addresses',
    tag: 'mail',
    summary: 'Revoke my reply and command addresses for this room',
    description:
      'Every `reply+…` and `cmd+…` address the caller\u2019s mails about the room carry stops working at once: mail to them posts nothing and is answered by nobody (docs/inbound-mail.md). The next notification carries new ones. Idempotent.',
    auth: 'session',
    params: roomParams,
    responses: { 200: revokedSchema },
    errors: ['room_not_found', 'not_a_member'],
  });
  router.delete('/rooms/:roomId/mail-addresses', async (req, res) => {
    const roomId = roomIdOf(req);
    const userId = authOf(res).session.userId;
    await deps.roomService.requireMember(roomId, userId);
    res.json({ revoked: await deps.addresses.revoke(userId, roomId) } satisfies z.infer<typeof revokedSchema>);
  });

  return router;
}
