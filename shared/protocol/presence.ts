/** Presence shapes shared by the app server and the browser client. */
import type { Role } from './messages';

/** A member seen within the presence window (instructors get the list). */
export interface OnlineMember {
  userId: string;
  displayName: string;
  role: Role;
}

/** GET /api/rooms/:roomId/presence */
export interface RoomPresence {
  /** Members whose last heartbeat is recent enough. */
  online: number;
  /** Who they are; only for instructors. */
  members?: OnlineMember[];
}

/** How often a client should send POST /api/rooms/:roomId/presence. */
export const PRESENCE_HEARTBEAT_MS = 10_000;
