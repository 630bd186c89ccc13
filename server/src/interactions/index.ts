/**
 * Interactions (issue 18, decision 0013): the instructor's shared view, polls, raised hands and
 * the question board, each an `action` message through the one send path. This checks who may
 * send what to whom and what the log allows now (under the room's lock), fills in what only the
 * server may say (a poll's tally, a question made public), and stores the result; and it serves
 * a room's current state, folded from the log, to a page that joins late or reconnects.
 */
import { interactionRequest, INTERACTION_RULES, type InteractionRequest } from '../../../shared/protocol/interactions';
import type { Role, RoomMessage, SendMessageRequest } from '../../../shared/protocol/messages';
import { RoomStateFold, type Interaction, type RoomState } from '../../../shared/protocol/room-state';
import { AppError, ForbiddenError, NotFoundError, ValidationError } from '../errors';
import type { Pool } from '../db/pool';
import type { SendMessage } from '../messages/send-message';
import { InteractionFacts } from './interaction-facts';
import { InteractionLog } from './interaction-log';

export class Interactions {
  private readonly log: InteractionLog;

  constructor(
    pool: Pool,
    private readonly sender: Pick<SendMessage, 'sendBuilt'>,
  ) {
    this.log = new InteractionLog(pool);
  }

  /** Sends an `action` message: `req.body` is an interaction request (`interactions.ts`). */
  async send(roomId: string, who: { userId: string; role: Role }, req: SendMessageRequest): Promise<{ message: RoomMessage; replayed: boolean }> {
    const parsed = interactionRequest.safeParse(req.body);
    if (!parsed.success) throw new ValidationError(`not an interaction: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const action = parsed.data;
    const rule = INTERACTION_RULES[action.type];
    if (rule.from === 'instructor' && who.role !== 'instructor') throw new ForbiddenError('instructor_only_kind', `only instructors send "${action.type}"`);
    if (rule.from === 'learner' && who.role !== 'learner') throw new ForbiddenError('forbidden', `only learners send "${action.type}"`);
    return this.sender.sendBuilt(roomId, who.userId, req.clientMsgId, async (tx) => {
      const facts = new InteractionFacts(tx, roomId);
      const stored = (body: Interaction, audience: SendMessageRequest['audience'], clientMsgId = req.clientMsgId): SendMessageRequest => ({
        clientMsgId,
        audience,
        kind: 'action',
        body: body as unknown as Record<string, unknown>,
      });
      const expect = (audience: SendMessageRequest['audience']): void => {
        if (req.audience !== audience || req.recipientId !== undefined) throw new ValidationError(`send "${action.type}" to audience "${audience}"`);
      };
      return this.build(action, who, facts, stored, expect);
    });
  }

  private async build(
    a: InteractionRequest,
    who: { userId: string; role: Role },
    facts: InteractionFacts,
    stored: (body: Interaction, audience: SendMessageRequest['audience'], clientMsgId?: string) => SendMessageRequest,
    expect: (audience: SendMessageRequest['audience']) => void,
  ): Promise<SendMessageRequest[]> {
    switch (a.type) {
      case 'view.show':
        expect('everyone');
        return [stored(a, 'everyone')];
      case 'poll.open': {
        expect('everyone');
        if (await facts.poll(a.pollId)) throw new AppError(409, 'poll_exists', `a poll ${a.pollId} was opened in this room already; open a new one with another pollId`);
        const { correct, ...open } = a;
        const messages = [stored(open, 'everyone')];
        // The right choices go to instructors only, beside the poll, and to everyone with the result.
        if (correct) messages.push(stored({ type: 'poll.key', pollId: a.pollId, correct }, 'instructors', `${messages[0]?.clientMsgId}:key`));
        return messages;
      }
      case 'poll.answer': {
        expect('instructors');
        const poll = await facts.poll(a.pollId, who.userId);
        if (!poll) throw new NotFoundError('poll_not_found', `no poll ${a.pollId} in this room`);
        if (poll.closed || (poll.closesAt !== null && poll.closesAt.getTime() <= Date.now())) throw new AppError(409, 'poll_closed', 'the poll is closed');
        if (a.choices.some((c) => c >= poll.choices)) throw new ValidationError(`choices: the poll has ${poll.choices}`);
        if (!poll.multiple && a.choices.length !== 1) throw new ValidationError('choices: one choice in this poll');
        if (!poll.allowChange && poll.answered) throw new AppError(409, 'poll_answered', 'you answered this poll already, and it does not allow a change');
        return [stored(a, 'instructors')];
      }
      case 'poll.reveal':
      case 'poll.close': {
        expect('everyone');
        const poll = await facts.poll(a.pollId);
        if (!poll) throw new NotFoundError('poll_not_found', `no poll ${a.pollId} in this room`);
        if (poll.closed) throw new AppError(409, 'poll_closed', 'the poll is closed already');
        const { tally, answered } = await facts.tally(a.pollId, poll.choices);
        return [stored({ type: a.type, pollId: a.pollId, tally, answered, ...(poll.correct ? { correct: poll.correct } : {}) }, 'everyone')];
      }
      case 'hand.raise':
        expect('everyone');
        if (a.userId !== who.userId) throw new ForbiddenError('forbidden', 'a learner raises only their own hand');
        if (await facts.handUp(a.userId)) throw new AppError(409, 'hand_already_raised', 'your hand is up already');
        return [stored(a, 'everyone')];
      case 'hand.lower':
        expect('everyone');
        if (a.userId !== who.userId && who.role !== 'instructor') throw new ForbiddenError('forbidden', 'only an instructor lowers someone else\u2019s hand');
        if (!(await facts.handUp(a.userId))) throw new AppError(409, 'hand_not_raised', 'that hand is not up');
        return [stored(a, 'everyone')];
      case 'board.mark': {
        const q = await facts.question(a.questionId);
        if (!q) throw new NotFoundError('question_not_found', 'no such question in this room');
        const makesPublic = a.status === 'public' && a.on;
        const audience = q.public || makesPublic ? 'everyone' : 'instructors';
        expect(audience);
        // Learners never received a private question: making it public carries its text to them.
        return [stored({ ...a, ...(makesPublic ? { text: q.text } : {}) }, audience)];
      }
      case 'board.upvote': {
        expect('everyone');
        const q = await facts.question(a.questionId);
        if (!q || !q.public) throw new NotFoundError('question_not_found', 'no such public question in this room');
        if (await facts.hasUpvoted(a.questionId, who.userId)) throw new AppError(409, 'already_upvoted', 'you upvoted this question already');
        return [stored(a, 'everyone')];
      }
    }
  }

  /** The room's state as this member may see it, folded from every interaction and question they may see, and the seq it is complete up to. */
  async state(roomId: string, who: { userId: string; role: Role }): Promise<RoomState> {
    const { messages, through } = await this.log.visible(roomId, who);
    const fold = new RoomStateFold(who);
    for (const m of messages) fold.apply(m);
    fold.state.through = through;
    return fold.state;
  }
}
