/**
 * What a client may send as the body of an `action` message (decision 0013): one schema per
 * interaction type, and who may send it to whom. The server checks these, fills in what only it
 * may say (tallies, a question made public), and stores the result through the one send path.
 * `room-state.ts` folds what is stored.
 */
import { z } from 'zod';
import type { Audience } from './messages';
import { POLL_MAX_CHOICES } from './room-state';

const id = z.string().regex(/^[\w-]{1,40}$/, 'letters, digits, _ and - only, at most 40');
const choiceIndexes = z
  .array(z.number().int().min(0).max(POLL_MAX_CHOICES - 1))
  .min(1)
  .max(POLL_MAX_CHOICES)
  .refine((c) => new Set(c).size === c.length, 'each choice once');

export const interactionRequest = z.discriminatedUnion('type', [
  z.object({ type: z.literal('view.show'), step: z.number().int().min(1).max(10_000), of: z.number().int().min(1).max(10_000).optional(), title: z.string().trim().max(200).optional() }).strict(),
  z
    .object({
      type: z.literal('poll.open'),
      pollId: id,
      question: z.string().trim().min(1).max(500),
      choices: z.array(z.string().trim().min(1).max(200)).min(2).max(POLL_MAX_CHOICES),
      multiple: z.boolean().default(false),
      allowChange: z.boolean().default(false),
      correct: choiceIndexes.optional().describe('The right choices, for a quiz: shown to learners with the result, never before'),
      closesAt: z.iso.datetime().optional(),
    })
    .strict()
    .superRefine((p, ctx) => {
      if (p.correct?.some((c) => c >= p.choices.length)) ctx.addIssue({ code: 'custom', path: ['correct'], message: 'a choice that does not exist' });
      if (p.correct && !p.multiple && p.correct.length !== 1) ctx.addIssue({ code: 'custom', path: ['correct'], message: 'one right choice in a single-choice poll' });
    }),
  z.object({ type: z.literal('poll.answer'), pollId: id, choices: choiceIndexes }).strict(),
  z.object({ type: z.literal('poll.reveal'), pollId: id }).strict(),
  z.object({ type: z.literal('poll.close'), pollId: id }).strict(),
  z.object({ type: z.literal('hand.raise'), userId: z.guid() }).strict(),
  z.object({ type: z.literal('hand.lower'), userId: z.guid() }).strict(),
  z.object({ type: z.literal('board.mark'), questionId: z.guid(), status: z.enum(['answered', 'pinned', 'dismissed', 'public']), on: z.boolean() }).strict(),
  z.object({ type: z.literal('board.upvote'), questionId: z.guid() }).strict(),
]);
export type InteractionRequest = z.infer<typeof interactionRequest>;
export type InteractionType = InteractionRequest['type'];

/**
 * Who may send each type, and to whom. `instructors`: only instructors (and the sender) receive
 * it, so a learner's poll answer never reaches another learner. `question`: the audience of the
 * question it is about (a mark on a private question stays among instructors).
 */
export const INTERACTION_RULES: Record<InteractionType, { from: 'instructor' | 'learner' | 'member'; audience: Audience | 'question' }> = {
  'view.show': { from: 'instructor', audience: 'everyone' },
  'poll.open': { from: 'instructor', audience: 'everyone' },
  'poll.answer': { from: 'learner', audience: 'instructors' },
  'poll.reveal': { from: 'instructor', audience: 'everyone' },
  'poll.close': { from: 'instructor', audience: 'everyone' },
  'hand.raise': { from: 'learner', audience: 'everyone' },
  'hand.lower': { from: 'member', audience: 'everyone' },
  'board.mark': { from: 'instructor', audience: 'question' },
  'board.upvote': { from: 'learner', audience: 'everyone' },
};

const choiceCounts = z.array(z.number().int().min(0));

/** GET /api/rooms/:roomId/state → `{state}`: the fold of `room-state.ts` as the caller may see it. */
export const roomStateSchema = z.object({
  state: z
    .object({
      view: z.object({ step: z.number().int(), of: z.number().int().nullable(), title: z.string().nullable(), seq: z.number().int() }).nullable().describe('The step the instructor shows; null before the first'),
      polls: z.array(
        z.object({
          pollId: z.string(),
          question: z.string(),
          choices: z.array(z.string()),
          multiple: z.boolean(),
          allowChange: z.boolean(),
          correct: z.array(z.number().int()).nullable().describe('Instructors: the right choices of a quiz; learners: once revealed or closed'),
          closesAt: z.string().nullable(),
          open: z.boolean(),
          revealed: z.boolean(),
          tally: choiceCounts.nullable().describe('Per choice. Instructors: live; learners: as of the reveal or close, null before'),
          answered: z.number().int().min(0),
          mine: z.array(z.number().int()).nullable().describe('The caller\u2019s own answer'),
          answers: z.record(z.string(), z.array(z.number().int())).nullable().describe('Instructors only: each learner\u2019s answer; null for learners'),
          openedSeq: z.number().int(),
        }),
      ),
      hands: z.array(z.object({ userId: z.guid(), raisedAt: z.string(), seq: z.number().int() })).describe('Raised hands, longest waiting first'),
      board: z.array(
        z.object({
          questionId: z.guid(),
          senderId: z.string(),
          text: z.string().nullable().describe('Null for a learner until the question is public'),
          createdAt: z.string(),
          answered: z.boolean(),
          pinned: z.boolean(),
          dismissed: z.boolean(),
          public: z.boolean(),
          upvotes: z.number().int().min(0),
          upvotedByMe: z.boolean(),
        }),
      ),
      through: z.number().int().min(0).describe('Every message up to this seq is folded in'),
    })
    .describe('A room\u2019s interactive state'),
});
