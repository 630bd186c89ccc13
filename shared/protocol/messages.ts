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
    clientMsgId: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[\w.:-]+$/, 'letters, digits, _ . : - only')
      .describe(
        'The sender\u2019s idempotency key, unique per sender and room: a retry with the same key and content returns the stored message (with `Idempotent-Replayed: true`); the same key with other content is a 409 `idempotency_conflict`',
      ),
    audience: z.enum(AUDIENCES).describe('`everyone`; `instructors` (the room\u2019s instructors, and the sender); `member` (one member, named by `recipientId`)'),
    recipientId: z.uuid().optional().describe('Required when `audience` is `member`, refused otherwise'),
    kind: z.enum(MESSAGE_KINDS).describe('`announcement` and `answer` are instructors\u2019 kinds (a learner gets 403 `instructor_only_kind`)'),
    body: z.record(z.string(), z.unknown()).describe(`Any JSON object of at most ${MAX_BODY_BYTES} bytes serialized (else 413 \`body_too_large\`); stored and returned unchanged`),
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
export const roomMessageSchema = z
  .object({
    id: z.guid(),
    roomId: z.guid(),
    seq: z.number().int().min(1).describe('Its position in the room: gapless, from 1, in commit order'),
    senderId: z.guid(),
    audience: z.enum(AUDIENCES),
    recipientId: z.guid().nullable().describe('The member it is addressed to when the audience is "member"; null otherwise'),
    kind: z.enum(MESSAGE_KINDS),
    body: z.record(z.string(), z.unknown()).describe('The JSON object the sender sent, unchanged'),
    clientMsgId: z.string().describe("The sender's idempotency key"),
    createdAt: z.iso.datetime(),
    broadcastSeq: z
      .number()
      .int()
      .min(1)
      .nullable()
      .describe(
        'For a message to everyone, its number among the room\u2019s messages to everyone: gapless, so a learner can tell a message it missed from one it may not see. Null for other audiences',
      ),
  })
  .describe('A message as stored, published to the broker and returned by resync');
export type RoomMessage = z.infer<typeof roomMessageSchema>;

/** 201 to POST /api/rooms/:roomId/messages (and to its idempotent replay). */
export const sendMessageResponseSchema = z.object({
  id: z.guid().describe('The message id (also `message.id`)'),
  seq: z.number().int().min(1).describe('The message seq (also `message.seq`)'),
  message: roomMessageSchema,
});
export type SendMessageResponse = z.infer<typeof sendMessageResponseSchema>;

/**
 * GET /api/rooms/:roomId/messages?after=&personalAfter=&limit=
 *
 * `after` applies to what the caller receives on its room-wide subscription (everything, for an
 * instructor; messages to everyone, for a learner); `personalAfter` (default: `after`) to the
 * rest it may see (a learner's own messages and those addressed to it).
 */
export const resyncPageSchema = z
  .object({
    messages: z.array(roomMessageSchema).describe('In seq order'),
    nextAfter: z.number().int().min(0).describe('Pass as both `after` and `personalAfter` (where they are lower) to get the next page'),
    hasMore: z.boolean().describe('More messages are there: ask again at once with `nextAfter`'),
    through: z
      .number()
      .int()
      .min(0)
      .describe(
        'Complete up to: every message the caller may see with a seq above the cursors and up to this one is in this page or an earlier page of the same walk. On the last page it is the room\u2019s newest seq when the page was read, so it can be above every seq returned',
      ),
    broadcastThrough: z
      .number()
      .int()
      .min(0)
      .nullable()
      .describe('On the last page, the room\u2019s newest `broadcastSeq` when `through` was read; null on the others'),
  })
  .describe('A page of resync: what the caller may see after its cursors, in seq order');
export type ResyncPage = z.infer<typeof resyncPageSchema>;

/** What a member may subscribe to in one room (GET /api/rooms/:roomId/subscriptions). */
export const roomSubscriptionsSchema = z
  .object({
    roomId: z.guid(),
    role: z.enum(ROLES),
    topics: z.array(z.string()).describe('STOMP topic destinations: temporary queues that live as long as the STOMP connection'),
    instructorQueue: z
      .object({ destination: z.string().describe('Its STOMP destination'), name: z.string() })
      .nullable()
      .describe('The instructor\u2019s durable queue, consumed with client acks; null for learners'),
  })
  .describe('The STOMP destinations a member may subscribe to in one room');
export type RoomSubscriptions = z.infer<typeof roomSubscriptionsSchema>;

/** POST /api/broker-token */
export const brokerTokenSchema = z
  .object({
    login: z.string().describe('The STOMP CONNECT `login`: the user id'),
    passcode: z.string().describe('The STOMP CONNECT `passcode`'),
    expiresAt: z.iso.datetime().describe('CONNECT before this; an open connection outlives it'),
  })
  .describe('A short-lived STOMP passcode');
export type BrokerToken = z.infer<typeof brokerTokenSchema>;
