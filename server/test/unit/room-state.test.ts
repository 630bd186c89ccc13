import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../../shared/protocol/messages';
import { openQuestions, RoomStateFold, type Interaction, type Viewer } from '../../../shared/protocol/room-state';

const ROOM = '00000000-0000-4000-8000-000000000001';
const TEACHER = '00000000-0000-4000-8000-00000000000a';
const ANN = '00000000-0000-4000-8000-00000000000b';
const BOB = '00000000-0000-4000-8000-00000000000c';

/** A room's log, built in seq order. */
function log(): { add(m: Partial<RoomMessage> & { senderId: string }): RoomMessage; all: RoomMessage[] } {
  const all: RoomMessage[] = [];
  return {
    all,
    add(m) {
      const seq = all.length + 1;
      const message: RoomMessage = {
        id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
        roomId: ROOM,
        seq,
        audience: 'everyone',
        recipientId: null,
        kind: 'action',
        body: {},
        clientMsgId: `c${seq}`,
        createdAt: new Date(Date.UTC(2026, 10, 29, 9, 0, seq)).toISOString(),
        broadcastSeq: null,
        ...m,
      };
      all.push(message);
      return message;
    },
  };
}

const act = (senderId: string, body: Interaction, audience: RoomMessage['audience'] = 'everyone') => ({ senderId, audience, kind: 'action' as const, body: body as unknown as Record<string, unknown> });
const teacher: Viewer = { userId: TEACHER, role: 'instructor' };
const ann: Viewer = { userId: ANN, role: 'learner' };

/** What a viewer receives of the log: instructors everything, learners what is to everyone, their own, and what is addressed to them. */
const seenBy = (v: Viewer, all: RoomMessage[]): RoomMessage[] =>
  v.role === 'instructor' ? all : all.filter((m) => m.audience === 'everyone' || m.senderId === v.userId || m.recipientId === v.userId);

function fold(v: Viewer, all: RoomMessage[]): RoomStateFold {
  const f = new RoomStateFold(v);
  for (const m of seenBy(v, all)) f.apply(m);
  return f;
}

/** A class: the view moves, a poll is answered (Ann changes her mind), revealed and closed, hands go up and down, questions come in. */
function aClass() {
  const l = log();
  l.add(act(TEACHER, { type: 'view.show', step: 1, of: 5, title: 'Intro' }));
  l.add(act(TEACHER, { type: 'poll.open', pollId: 'p1', question: 'Which is a noble gas?', choices: ['O', 'Ne', 'N'], multiple: false, allowChange: true }));
  l.add(act(TEACHER, { type: 'poll.key', pollId: 'p1', correct: [1] }, 'instructors'));
  l.add(act(ANN, { type: 'poll.answer', pollId: 'p1', choices: [0] }, 'instructors'));
  l.add(act(BOB, { type: 'poll.answer', pollId: 'p1', choices: [1] }, 'instructors'));
  l.add(act(ANN, { type: 'poll.answer', pollId: 'p1', choices: [1] }, 'instructors'));
  l.add(act(TEACHER, { type: 'view.show', step: 2, of: 5 }));
  l.add(act(ANN, { type: 'hand.raise', userId: ANN }));
  l.add(act(BOB, { type: 'hand.raise', userId: BOB }));
  l.add(act(ANN, { type: 'hand.raise', userId: ANN }));
  l.add(act(TEACHER, { type: 'poll.reveal', pollId: 'p1', tally: [0, 2, 0], answered: 2, correct: [1] }));
  l.add(act(TEACHER, { type: 'hand.lower', userId: ANN }));
  const privateQ = l.add({ senderId: BOB, kind: 'question', audience: 'instructors', body: { text: 'Is Ne reactive?' } });
  const annQ = l.add({ senderId: ANN, kind: 'question', audience: 'instructors', body: { text: 'Will this be on the exam?' } });
  l.add(act(TEACHER, { type: 'board.mark', questionId: privateQ.id, status: 'public', on: true, text: 'Is Ne reactive?' }));
  l.add(act(ANN, { type: 'board.upvote', questionId: privateQ.id }));
  l.add(act(TEACHER, { type: 'board.mark', questionId: annQ.id, status: 'answered', on: true }, 'instructors'));
  l.add(act(TEACHER, { type: 'poll.close', pollId: 'p1', tally: [0, 2, 0], answered: 2, correct: [1] }));
  return { l, privateQ, annQ };
}

describe('the room state fold', () => {
  it('gives the instructor the shown step, live tallies from every answer (a changed answer counted once), the hand queue and the board', () => {
    const { l, privateQ, annQ } = aClass();
    const s = fold(teacher, l.all).state;
    expect(s.view).toEqual({ step: 2, of: 5, title: null, seq: 7 });
    expect(s.polls).toHaveLength(1);
    expect(s.polls[0]).toMatchObject({ pollId: 'p1', open: false, revealed: true, tally: [0, 2, 0], answered: 2, correct: [1], answers: { [ANN]: [1], [BOB]: [1] } });
    expect(s.hands.map((h) => h.userId)).toEqual([BOB]);
    expect(s.board.map((q) => [q.questionId, q.text, q.public, q.answered, q.upvotes])).toEqual([
      [privateQ.id, 'Is Ne reactive?', true, false, 1],
      [annQ.id, 'Will this be on the exam?', false, true, 0],
    ]);
    expect(openQuestions(s)).toBe(1);
    expect(s.through).toBe(l.all.length);
  });

  it('gives a learner no tally and no other answers until the reveal, then the server’s numbers; their own answer and questions; others’ questions only once public', () => {
    const { l, privateQ, annQ } = aClass();
    const beforeReveal = fold(ann, l.all.slice(0, 10)).state;
    expect(beforeReveal.polls[0]).toMatchObject({ tally: null, answered: 0, mine: [1], answers: null, correct: null, revealed: false });
    const s = fold(ann, l.all).state;
    expect(s.polls[0]).toMatchObject({ tally: [0, 2, 0], answered: 2, mine: [1], answers: null, correct: [1], open: false });
    expect(s.board.find((q) => q.questionId === annQ.id)?.text).toBe('Will this be on the exam?');
    expect(s.board.find((q) => q.questionId === privateQ.id)).toMatchObject({ text: 'Is Ne reactive?', public: true, upvotes: 1, upvotedByMe: true });
    // Before the instructor made it public, Bob's question was not on Ann's board at all.
    expect(fold(ann, l.all.slice(0, 14)).state.board.map((q) => q.questionId)).toEqual([annQ.id]);
    // The key of the quiz never reached her: the right choice came with the result.
    expect(fold(ann, l.all.slice(0, 3)).state.polls[0]?.correct).toBeNull();
    expect(fold(teacher, l.all.slice(0, 3)).state.polls[0]?.correct).toEqual([1]);
  });

  it('ends in the same state whether a page watched live or took a snapshot midway and applied the rest', () => {
    const { l } = aClass();
    for (const viewer of [teacher, ann]) {
      const mine = seenBy(viewer, l.all);
      for (let cut = 0; cut <= mine.length; cut++) {
        const snapshot = JSON.parse(JSON.stringify(fold(viewer, mine.slice(0, cut)).state));
        const resumed = new RoomStateFold(viewer, snapshot);
        for (const m of mine) resumed.apply(m);
        expect(resumed.state, `${viewer.role}, snapshot after ${cut}`).toEqual(fold(viewer, mine).state);
      }
    }
  });

  it('skips a message it folded already (a redelivery), and ignores action types it does not know', () => {
    const { l } = aClass();
    const f = fold(teacher, l.all);
    const before = JSON.stringify(f.state);
    expect(f.apply(l.all[7] as RoomMessage)).toBe(false);
    const next = l.add({ senderId: TEACHER, kind: 'action', body: { type: 'confetti.throw' } });
    expect(f.apply(next)).toBe(false);
    expect({ ...JSON.parse(JSON.stringify(f.state)), through: 0 }).toEqual({ ...JSON.parse(before), through: 0 });
    expect(f.state.through).toBe(next.seq);
  });
});
