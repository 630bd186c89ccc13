/** Presence shapes shared by the app server and the browser client. */
import type { z } from 'zod';
import type { onlineMemberSchema, roomPresenceSchema } from './schemas';

/** A member seen within the presence window (instructors get the list). */
export type OnlineMember = z.infer<typeof onlineMemberSchema>;

/** GET /api/rooms/:roomId/presence */
export type RoomPresence = z.infer<typeof roomPresenceSchema>;

/** How often a client should send POST /api/rooms/:roomId/presence. */
export const PRESENCE_HEARTBEAT_MS = 10_000;
