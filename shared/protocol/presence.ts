/** Presence shapes shared by the app server and the browser client. */
import { z } from 'zod';
import { ROLES } from './messages';

/** A member seen within the presence window (instructors get the list). */
export const onlineMemberSchema = z.object({ userId: z.guid(), displayName: z.string(), role: z.enum(ROLES) }).describe('A member seen within the presence window');
export type OnlineMember = z.infer<typeof onlineMemberSchema>;

/** GET /api/rooms/:roomId/presence */
export const roomPresenceSchema = z
  .object({
    online: z.number().int().min(0).describe('Members whose last heartbeat is recent enough'),
    members: z.array(onlineMemberSchema).optional().describe('Who they are; only for instructors'),
  })
  .describe('Who is online in a room');
export type RoomPresence = z.infer<typeof roomPresenceSchema>;

/** How often a client should send POST /api/rooms/:roomId/presence. */
export const PRESENCE_HEARTBEAT_MS = 10_000;
