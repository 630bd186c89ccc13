/** Users, rooms and members as the API returns them; shared by the app server and the browser. */
import { z } from 'zod';
import { ROLES } from './messages';

export const userSchema = z
  .object({
    id: z.guid(),
    username: z.string(),
    displayName: z.string(),
    role: z.enum(ROLES).describe('The role the user was created with; a room has its own role per member'),
  })
  .describe('A user');
export type User = z.infer<typeof userSchema>;

export const roomSchema = z
  .object({
    id: z.guid(),
    name: z.string(),
    inviteCode: z.string().describe('What a learner gives POST /api/rooms/join; only the room\u2019s instructors get it'),
    createdBy: z.guid(),
    lastSeq: z.number().int().min(0).describe('The seq of the room\u2019s newest message when read (0: none yet)'),
    createdAt: z.iso.datetime(),
  })
  .describe('A room, as its instructors see it');
export type Room = z.infer<typeof roomSchema>;

/** A room as a member may see it: the invite code admits anyone, so only instructors get it. */
export const visibleRoomSchema = roomSchema
  .extend({ inviteCode: roomSchema.shape.inviteCode.optional() })
  .describe('A room as a member sees it: `inviteCode` only for its instructors');

/** One of the caller's rooms, with the caller's role in it (GET /api/rooms, GET /api/me, POST /api/rooms/join). */
export const myRoomSchema = visibleRoomSchema.extend({ role: z.enum(ROLES).describe('The caller\u2019s role in this room') }).describe('One of the caller\u2019s rooms');
export type MyRoom = z.infer<typeof myRoomSchema>;

export const memberSchema = z
  .object({
    userId: z.guid(),
    username: z.string(),
    displayName: z.string(),
    role: z.enum(ROLES).describe('The member\u2019s role in this room'),
  })
  .describe('A member of a room');
export type Member = z.infer<typeof memberSchema>;

/** POST /api/rooms → 201 */
export const createdRoomSchema = z.object({ room: roomSchema });

/** GET /api/rooms */
export const myRoomsSchema = z.object({ rooms: z.array(myRoomSchema).describe('Oldest first') });

/** POST /api/rooms/join */
export const joinedRoomSchema = z.object({ room: myRoomSchema });

/** GET /api/rooms/:roomId */
export const roomDetailsSchema = z.object({
  room: visibleRoomSchema,
  role: z.enum(ROLES).describe('The caller\u2019s role in this room'),
  members: z.array(memberSchema),
});
export type RoomDetails = z.infer<typeof roomDetailsSchema>;

/** POST /api/auth/login, POST /api/auth/password: a new session. */
export const loginResponseSchema = z
  .object({
    token: z.string().describe('Send as `Authorization: Bearer <token>`'),
    expiresAt: z.iso.datetime().describe('When the session ends unless revoked earlier'),
    user: userSchema,
  })
  .describe('A new session');
export type LoginResponse = z.infer<typeof loginResponseSchema>;

/** GET /api/me */
export const meSchema = z.object({ user: userSchema, rooms: z.array(myRoomSchema).describe('Oldest first') });
export type Me = z.infer<typeof meSchema>;

/** GET /api/account, PUT /api/account/email: a user as their own account page shows them. */
export const accountSchema = z
  .object({
    username: z.string(),
    displayName: z.string(),
    role: z.enum(ROLES),
    email: z.string().nullable().describe('The address mail goes to once verified (lower case); null when none was set'),
    emailVerified: z.boolean().describe('Only a verified address gets mail'),
  })
  .describe('The caller\u2019s account');
export type Account = z.infer<typeof accountSchema>;
