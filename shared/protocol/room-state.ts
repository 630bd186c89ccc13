/**
 * A room's interactive state (issue 18, decision 0013) as a fold of its log: the instructor's
 * shared view, the polls, the raised hands and the question board. Every interaction is a
 * message of kind `action` whose body's `type` says what it is (`Interaction`); questions are
 * messages of kind `question`. The server folds the log to serve the state to a page that joins
 * late or reconnects; the page applies live messages with the same fold; so both show the same.
 *
 * Pure and zod-free: the pages bundle it. The shapes of action bodies are checked by the server
 * (interactions.ts) before they are stored; the fold trusts only what the server stored, and
 * ignores what does not fit (an older or newer client's types).
 */
import type { Role, RoomMessage } from './messages';

export const POLL_MAX_CHOICES = 10;

export type BoardStatus = 'answered' | 'pinned' | 'dismissed' | 'public';

/** The body of an `action` message. */
export type Interaction =
  | { type: 'view.show'; step: number; of?: number; title?: string }
  | { type: 'poll.open'; pollId: string; question: string; choices: string[]; multiple: boolean; allowChange: boolean; correct?: number[]; closesAt?: string }
  | { type: 'poll.answer'; pollId: string; choices: number[] }
  /** Filled by the server: the tally of the answers stored before it, per choice, how many answered, and the right choices if the poll has them. */
  | { type: 'poll.reveal'; pollId: string; tally: number[]; answered: number; correct?: number[] }
  | { type: 'poll.close'; pollId: string; tally: number[]; answered: number; correct?: number[] }
  | { type: 'hand.raise'; userId: string }
  | { type: 'hand.lower'; userId: string }
  /** `public` is filled by the server with the question's text, which learners did not receive before. */
  | { type: 'board.mark'; questionId: string; status: BoardStatus; on: boolean; text?: string }
  | { type: 'board.upvote'; questionId: string }
  /** Stored by the server beside a quiz's `poll.open`, to instructors only: the right choices. */
  | { type: 'poll.key'; pollId: string; correct: number[] };

export interface PollState {
  pollId: string;
  question: string;
  choices: string[];
  multiple: boolean;
  allowChange: boolean;
  /** The right choices, when the poll has them: instructors always, learners once revealed or closed. */
  correct: number[] | null;
  closesAt: string | null;
  open: boolean;
  revealed: boolean;
  /** Per choice. Instructors: live, from every answer; learners: as of the reveal or close, null before. */
  tally: number[] | null;
  answered: number;
  /** The viewer's own answer, if any. */
  mine: number[] | null;
  /** Instructors only (null for learners): each learner's answer, what the live tally counts. */
  answers: Record<string, number[]> | null;
  openedSeq: number;
}

export interface BoardQuestion {
  questionId: string;
  senderId: string;
  /** Null for a learner until the instructor makes the question public. */
  text: string | null;
  createdAt: string;
  answered: boolean;
  pinned: boolean;
  dismissed: boolean;
  public: boolean;
  upvotes: number;
  upvotedByMe: boolean;
}

export interface RoomState {
  view: { step: number; of: number | null; title: string | null; seq: number } | null;
  /** In the order they were opened. */
  polls: PollState[];
  /** Raised hands, longest waiting first. */
  hands: { userId: string; raisedAt: string; seq: number }[];
  board: BoardQuestion[];
  /** The state is every message up to this seq, folded. */
  through: number;
}

export interface Viewer {
  userId: string;
  role: Role;
}

export const emptyRoomState = (): RoomState => ({ view: null, polls: [], hands: [], board: [], through: 0 });

/** Folds messages in seq order; a message at or below `through` was folded already and is skipped. */
export class RoomStateFold {
  readonly state: RoomState;

  constructor(
    readonly viewer: Viewer,
    initial: RoomState = emptyRoomState(),
  ) {
    this.state = structuredClone(initial);
  }

  /** Applies one message; false when it was skipped (already folded) or changes nothing here. */
  apply(m: RoomMessage): boolean {
    if (m.seq <= this.state.through) return false;
    this.state.through = m.seq;
    if (m.kind === 'question') return this.question(m);
    if (m.kind !== 'action') return false;
    const body = m.body as Partial<Interaction> & { type?: unknown };
    switch (body.type) {
      case 'view.show':
        return this.viewShow(m, body as Extract<Interaction, { type: 'view.show' }>);
      case 'poll.open':
        return this.pollOpen(m, body as Extract<Interaction, { type: 'poll.open' }>);
      case 'poll.answer':
        return this.pollAnswer(m, body as Extract<Interaction, { type: 'poll.answer' }>);
      case 'poll.key': {
        const poll = this.poll((body as { pollId: string }).pollId);
        if (!poll) return false;
        poll.correct = [...(body as { correct: number[] }).correct];
        return true;
      }
      case 'poll.reveal':
      case 'poll.close':
        return this.pollResult(body as Extract<Interaction, { type: 'poll.reveal' | 'poll.close' }>);
      case 'hand.raise':
        return this.hand(m, (body as { userId: string }).userId, true);
      case 'hand.lower':
        return this.hand(m, (body as { userId: string }).userId, false);
      case 'board.mark':
        return this.boardMark(body as Extract<Interaction, { type: 'board.mark' }>);
      case 'board.upvote':
        return this.boardUpvote(m, body as Extract<Interaction, { type: 'board.upvote' }>);
      default:
        return false;
    }
  }

  private get instructor(): boolean {
    return this.viewer.role === 'instructor';
  }

  private viewShow(m: RoomMessage, b: Extract<Interaction, { type: 'view.show' }>): boolean {
    this.state.view = { step: b.step, of: b.of ?? null, title: b.title ?? null, seq: m.seq };
    return true;
  }

  private poll(pollId: string): PollState | undefined {
    return this.state.polls.find((p) => p.pollId === pollId);
  }

  private pollOpen(m: RoomMessage, b: Extract<Interaction, { type: 'poll.open' }>): boolean {
    if (this.poll(b.pollId)) return false;
    this.state.polls.push({
      pollId: b.pollId,
      question: b.question,
      choices: [...b.choices],
      multiple: b.multiple,
      allowChange: b.allowChange,
      // The open message goes to everyone, so the right choices are never in it: instructors get them in a `poll.key` beside it, learners with the result.
      correct: null,
      closesAt: b.closesAt ?? null,
      open: true,
      revealed: false,
      tally: this.instructor ? b.choices.map(() => 0) : null,
      answered: 0,
      mine: null,
      answers: this.instructor ? {} : null,
      openedSeq: m.seq,
    });
    return true;
  }

  private pollAnswer(m: RoomMessage, b: Extract<Interaction, { type: 'poll.answer' }>): boolean {
    const poll = this.poll(b.pollId);
    if (!poll) return false;
    if (m.senderId === this.viewer.userId) poll.mine = [...b.choices];
    if (poll.answers === null) return true;
    // A changed answer replaces the learner's earlier one (the server refuses a change the poll does not allow).
    poll.answers[m.senderId] = [...b.choices];
    const tally = poll.choices.map(() => 0);
    for (const choices of Object.values(poll.answers)) for (const c of choices) if (c >= 0 && c < tally.length) tally[c] = (tally[c] ?? 0) + 1;
    poll.tally = tally;
    poll.answered = Object.keys(poll.answers).length;
    return true;
  }

  private pollResult(b: Extract<Interaction, { type: 'poll.reveal' | 'poll.close' }>): boolean {
    const poll = this.poll(b.pollId);
    if (!poll) return false;
    if (b.type === 'poll.close') poll.open = false;
    else poll.revealed = true;
    // Instructors keep counting live; a learner's numbers are the server's, as of this message.
    if (!this.instructor) {
      poll.tally = [...b.tally];
      poll.answered = b.answered;
    }
    if (b.correct) poll.correct = [...b.correct];
    return true;
  }

  private hand(m: RoomMessage, userId: string, raise: boolean): boolean {
    const at = this.state.hands.findIndex((h) => h.userId === userId);
    if (raise) {
      if (at !== -1) return false;
      this.state.hands.push({ userId, raisedAt: m.createdAt, seq: m.seq });
      return true;
    }
    if (at === -1) return false;
    this.state.hands.splice(at, 1);
    return true;
  }

  private question(m: RoomMessage): boolean {
    if (this.state.board.some((q) => q.questionId === m.id)) return false;
    const text = typeof m.body.text === 'string' ? m.body.text : '';
    const seesText = this.instructor || m.senderId === this.viewer.userId || m.audience === 'everyone';
    this.state.board.push({
      questionId: m.id,
      senderId: m.senderId,
      text: seesText ? text : null,
      createdAt: m.createdAt,
      answered: false,
      pinned: false,
      dismissed: false,
      public: m.audience === 'everyone',
      upvotes: 0,
      upvotedByMe: false,
    });
    return true;
  }

  private boardMark(b: Extract<Interaction, { type: 'board.mark' }>): boolean {
    let q = this.state.board.find((x) => x.questionId === b.questionId);
    if (!q) {
      // A question a learner never received: it enters their board when it is made public.
      if (b.status !== 'public' || !b.on) return false;
      q = { questionId: b.questionId, senderId: '', text: null, createdAt: '', answered: false, pinned: false, dismissed: false, public: false, upvotes: 0, upvotedByMe: false };
      this.state.board.push(q);
    }
    q[b.status] = b.on;
    if (b.status === 'public' && b.on && b.text !== undefined) q.text = b.text;
    return true;
  }

  /** The server stores one upvote per learner and question, so each stored one counts. */
  private boardUpvote(m: RoomMessage, b: Extract<Interaction, { type: 'board.upvote' }>): boolean {
    const q = this.state.board.find((x) => x.questionId === b.questionId);
    if (!q) return false;
    q.upvotes += 1;
    if (m.senderId === this.viewer.userId) q.upvotedByMe = true;
    return true;
  }
}

/** The unanswered, undismissed questions: the count an instructor always sees. */
export const openQuestions = (s: RoomState): number => s.board.filter((q) => !q.answered && !q.dismissed).length;
