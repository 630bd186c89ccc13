/** Message shapes shared by the app server and the browser client. */
import { z } from 'zod';

/** A message's JSON body may take at most this many bytes (UTF-8, serialized). */
export const MAX_BODY_BYTES = 16 * 1024;

export const MESSAGE_KINDS = ['chat', 'question', 'answer', 'action', 'announcement'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** Kinds only an instructor may send: the pages show them as the instructor's word. */
export const INSTRUCTOR_KINDS: readonly MessageKind[] = ['announcement', 'answer'];

export const AUDIENCES = ['everyone', 'instructors', 'member'] as const;
export type Audience = (typeof AUDIENCES)[number];

export const ROLES = ['instructor', 'learner'] as const;
export type Role = (typeof ROLES)[number];

/** POST /api/rooms/:roomId/messages */
export const sendMessageRequest = z
  .object({
    clientMsgId: z.string().min(1).max(100).regex(/^[\w.:-]+$/, 'letters, digits, _ . : - only'),
    audience: z.enum(AUDIENCES),
    recipientId: z.uuid().optional(),
    kind: z.enum(MESSAGE_KINDS),
    body: z.record(z.string(), z.unknown()),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.audience === 'member' && !m.recipientId) {
      ctx.addIssue({ code: 'custom', path: ['recipientId'], message: 'required when audience is "member"' });
    }
    if (m.audience !== 'member' && m.recipientId) {
      ctx.addIssue({ code: 'custom', path: ['recipientId'], message: 'only allowed when audience is "member"' });
    }
  });
export type SendMessageRequest = z.infer<typeof sendMessageRequest>;

/** A message as stored, published to the broker and returned by resync. */
export interface RoomMessage {
  id: string;
  roomId: string;
  seq: number;
  senderId: string;
  audience: Audience;
  recipientId: string | null;
  kind: MessageKind;
  body: Record<string, unknown>;
  clientMsgId: string;
  createdAt: string;
  /**
   * For a message to everyone, its number among the room's messages to everyone: gapless, so a
   * learner can tell a message it missed from one it may not see. Null for other audiences.
   */
  broadcastSeq: number | null;
}

/**
 * GET /api/rooms/:roomId/messages?after=&personalAfter=&limit=
 *
 * `after` applies to what the caller receives on its room-wide subscription (everything, for an
 * instructor; messages to everyone, for a learner); `personalAfter` (default: `after`) to the
 * rest it may see (a learner's own messages and those addressed to it).
 */
export interface ResyncPage {
  messages: RoomMessage[];
  /** Pass as both `after` and `personalAfter` (where they are lower) to get the next page. */
  nextAfter: number;
  hasMore: boolean;
  /**
   * Complete up to: every message the caller may see with a seq above the cursors and up to this
   * one is in this page or an earlier page of the same walk. On the last page it is the room's
   * newest seq when the page was read, so it can be above every seq returned.
   */
  through: number;
  /** On the last page, the room's newest `broadcastSeq` when `through` was read; null on the others. */
  broadcastThrough: number | null;
}

/** What a member may subscribe to in one room (GET /api/rooms/:roomId/subscriptions). */
export interface RoomSubscriptions {
  roomId: string;
  role: Role;
  /** Topic destinations: temporary queues that live as long as the STOMP connection. */
  topics: string[];
  /** The instructor's durable queue, consumed with client acks; null for learners. */
  instructorQueue: { destination: string; name: string } | null;
}

/** POST /api/broker-token */
export interface BrokerToken {
  login: string;
  passcode: string;
  expiresAt: string;
}
