/**
 * The schemas of the shapes `errors.ts`, `presence.ts` and `events.ts` define (their types are
 * inferred from these). Apart from those modules because the pages import values from them
 * (ERROR_CODES, PRESENCE_HEARTBEAT_MS, parsePosition, …): zod cannot be tree-shaken, and the
 * pages would carry all of it (some 450 KB) for schemas only the server and the API's
 * description use. Import this module only where zod's weight does not matter.
 */
import { z } from 'zod';
import { ERROR_CODES } from './errors';
import { POSITION_RE } from './events';
import { ROLES, roomMessageSchema } from './messages';

/** The body of every error response. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).describe('Stable: what a client acts on'),
      message: z.string().describe('For people: what went wrong and what to do; may change'),
      details: z.unknown().optional().describe('For `invalid_request`: one `{path, message}` per problem'),
    }),
  })
  .describe('The body of every error response');

/** A member seen within the presence window (instructors get the list). */
export const onlineMemberSchema = z.object({ userId: z.guid(), displayName: z.string(), role: z.enum(ROLES) }).describe('A member seen within the presence window');

/** GET /api/rooms/:roomId/presence */
export const roomPresenceSchema = z
  .object({
    online: z.number().int().min(0).describe('Members whose last heartbeat is recent enough'),
    members: z.array(onlineMemberSchema).optional().describe('Who they are; only for instructors'),
  })
  .describe('Who is online in a room');

const eventBase = {
  id: z.guid().describe('Stable: the same event has the same id in every feed, every time (a message\u2019s id for `message.created`)'),
  roomId: z.guid(),
  position: z.string().regex(POSITION_RE).describe('Where this event sits in its room: a room cursor ("<seq>.<n>") that resumes right after it'),
  createdAt: z.iso.datetime(),
};

/** A room event, as every feed (pull, stream, webhooks) carries it. */
export const roomEventSchema = z
  .discriminatedUnion('type', [
    z.object({
      ...eventBase,
      type: z.literal('message.created'),
      seq: z.number().int().min(1).describe('The message\u2019s seq in its room'),
      data: z.object({ message: roomMessageSchema }),
    }),
    z.object({
      ...eventBase,
      type: z.enum(['room.created', 'member.joined', 'member.left']),
      seq: z.null(),
      data: z.object({ userId: z.guid().describe('Who joined or left, or created the room'), role: z.enum(ROLES) }),
    }),
  ])
  .describe('A room event, as every feed (pull, stream, webhooks) carries it');

/** GET /api/rooms/:id/events and GET /api/events. */
export const eventPageSchema = z
  .object({
    events: z.array(roomEventSchema).describe('In order: by position within a room; oldest first across rooms'),
    next: z.string().describe('Pass as `after` to get what comes next; valid for as long as the data is kept (any age)'),
    hasMore: z.boolean().describe('More events were there than the page held: ask again at once'),
  })
  .describe('A page of room events');

/** POST /api/events/tickets: opens one stream, once, within `expiresInSeconds`. */
export const eventStreamTicketSchema = z
  .object({
    ticket: z.string().describe('Pass as `?ticket=` to the stream it was asked for'),
    expiresInSeconds: z.number().int().min(1).describe('Open the stream within this long'),
  })
  .describe('A single-use ticket that opens one event stream');
