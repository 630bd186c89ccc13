/**
 * Interactions through the real send path (decision 0013): who may send what, what the log
 * allows, the server's tallies, and the state a late page is served, against Postgres and the
 * broker like every send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { RoomStateFold, type RoomState } from '../../shared/protocol/room-state';
import { makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ mail: false, webhooks: false, campaigns: false });
});
afterAll(() => h.close());

const act = (user: TestUser, roomId: string, body: Record<string, unknown>, audience = 'everyone', clientMsgId = uniqueName('a')) =>
  user.api.post(`/api/rooms/${roomId}/messages`, { clientMsgId, audience, kind: 'action', body });

const state = async (user: TestUser, roomId: string): Promise<RoomState> => {
  const res = await user.api.get(`/api/rooms/${roomId}/state`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.state;
};

/** Everything the member's resync returns, from the start. */
async function resyncAll(user: TestUser, roomId: string): Promise<RoomMessage[]> {
  const all: RoomMessage[] = [];
  for (let after = 0; ; ) {
    const page = (await user.api.get(`/api/rooms/${roomId}/messages?after=${after}&limit=500`)).body;
    all.push(...page.messages);
    if (!page.hasMore) return all;
    after = page.nextAfter;
  }
}

const poll = (pollId: string, extra: Record<string, unknown> = {}) => ({ type: 'poll.open', pollId, question: 'Which is a noble gas?', choices: ['O', 'Ne', 'N'], ...extra });

describe('interactions', () => {
  let room: TestRoom;
  let ann: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    room = await makeRoom(h, 2);
    [ann, bob] = room.learners as [TestUser, TestUser];
  });

  it('a quiz: learners answer once, see no tally or key before the reveal; the instructor sees every answer live; the reveal carries the exact tally and the key', async () => {
    const t = room.instructor;
    expect((await act(t, room.id, poll('q1', { correct: [1] }))).status).toBe(201);
    expect((await act(t, room.id, poll('q1'))).body.error.code).toBe('poll_exists');
    const clientMsgId = uniqueName('ans');
    expect((await act(ann, room.id, { type: 'poll.answer', pollId: 'q1', choices: [1] }, 'instructors', clientMsgId)).status).toBe(201);
    // A retry of the same send is the same answer, not a second one; a new answer is refused.
    const retry = await act(ann, room.id, { type: 'poll.answer', pollId: 'q1', choices: [1] }, 'instructors', clientMsgId);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await act(ann, room.id, { type: 'poll.answer', pollId: 'q1', choices: [0] }, 'instructors')).body.error.code).toBe('poll_answered');
    expect((await act(bob, room.id, { type: 'poll.answer', pollId: 'q1', choices: [0, 1] }, 'instructors')).status).toBe(400);
    expect((await act(bob, room.id, { type: 'poll.answer', pollId: 'q1', choices: [2] }, 'everyone')).status).toBe(400);
    expect((await act(bob, room.id, { type: 'poll.answer', pollId: 'q1', choices: [2] }, 'instructors')).status).toBe(201);

    const before = (await state(ann, room.id)).polls[0];
    expect(before).toMatchObject({ tally: null, correct: null, mine: [1], answers: null, answered: 0 });
    // Ann's resync has her own answer, never Bob's, and no key.
    const annSees = await resyncAll(ann, room.id);
    expect(annSees.filter((m) => m.kind === 'action').map((m) => [m.senderId, m.body.type])).toEqual([
      [t.id, 'poll.open'],
      [ann.id, 'poll.answer'],
    ]);
    expect((await state(t, room.id)).polls[0]).toMatchObject({ tally: [0, 1, 1], answered: 2, correct: [1], answers: { [ann.id]: [1], [bob.id]: [2] } });

    expect((await act(ann, room.id, { type: 'poll.reveal', pollId: 'q1' })).body.error.code).toBe('instructor_only_kind');
    expect((await act(t, room.id, { type: 'poll.reveal', pollId: 'q1' })).status).toBe(201);
    expect((await state(ann, room.id)).polls[0]).toMatchObject({ tally: [0, 1, 1], answered: 2, correct: [1], revealed: true, open: true });
    expect((await act(t, room.id, { type: 'poll.close', pollId: 'q1' })).status).toBe(201);
    expect((await act(bob, room.id, { type: 'poll.answer', pollId: 'nope', choices: [0] }, 'instructors')).body.error.code).toBe('poll_not_found');
    const late = await makeUser(h, 'learner');
    await late.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    expect((await act(late, room.id, { type: 'poll.answer', pollId: 'q1', choices: [1] }, 'instructors')).body.error.code).toBe('poll_closed');
  });

  it('counts exactly the answers stored before the reveal, with many learners answering at the same moment', async () => {
    const big = await makeRoom(h, 40);
    const t = big.instructor;
    await act(t, big.id, poll('rush'));
    const answering = big.learners.map((l, i) => act(l, big.id, { type: 'poll.answer', pollId: 'rush', choices: [i % 3] }, 'instructors'));
    const reveal = act(t, big.id, { type: 'poll.reveal', pollId: 'rush' });
    const [revealed, ...answers] = await Promise.all([reveal, ...answering]);
    expect(answers.every((a) => a.status === 201)).toBe(true);
    const revealSeq = revealed.body.message.seq as number;
    const stored = (await resyncAll(t, big.id)).filter((m) => m.body.type === 'poll.answer' && m.seq < revealSeq);
    const expected = [0, 1, 2].map((c) => stored.filter((m) => (m.body.choices as number[])[0] === c).length);
    expect(revealed.body.message.body).toMatchObject({ tally: expected, answered: stored.length });
  });

  it('hands: a learner raises once and lowers their own; the instructor lowers anyone’s; the queue is in order', async () => {
    const t = room.instructor;
    expect((await act(ann, room.id, { type: 'hand.raise', userId: ann.id })).status).toBe(201);
    expect((await act(ann, room.id, { type: 'hand.raise', userId: ann.id })).body.error.code).toBe('hand_already_raised');
    expect((await act(ann, room.id, { type: 'hand.raise', userId: bob.id })).body.error.code).toBe('forbidden');
    expect((await act(bob, room.id, { type: 'hand.raise', userId: bob.id })).status).toBe(201);
    expect((await state(ann, room.id)).hands.map((x) => x.userId)).toEqual([ann.id, bob.id]);
    expect((await act(bob, room.id, { type: 'hand.lower', userId: ann.id })).body.error.code).toBe('forbidden');
    expect((await act(t, room.id, { type: 'hand.lower', userId: ann.id })).status).toBe(201);
    expect((await act(t, room.id, { type: 'hand.lower', userId: ann.id })).body.error.code).toBe('hand_not_raised');
    expect((await state(t, room.id)).hands.map((x) => x.userId)).toEqual([bob.id]);
  });

  it('the board: a private question reaches learners only when made public, with its text; upvotes once, on public questions only', async () => {
    const t = room.instructor;
    const asked = await bob.api.post(`/api/rooms/${room.id}/messages`, { clientMsgId: uniqueName('q'), audience: 'instructors', kind: 'question', body: { text: 'Is neon reactive?' } });
    const questionId = asked.body.message.id as string;
    expect((await state(ann, room.id)).board.map((q) => q.questionId)).not.toContain(questionId);
    expect((await act(ann, room.id, { type: 'board.upvote', questionId })).body.error.code).toBe('question_not_found');
    // A mark on a private question stays among instructors; sent to everyone it is refused.
    expect((await act(t, room.id, { type: 'board.mark', questionId, status: 'pinned', on: true })).status).toBe(400);
    expect((await act(t, room.id, { type: 'board.mark', questionId, status: 'pinned', on: true }, 'instructors')).status).toBe(201);
    expect((await act(t, room.id, { type: 'board.mark', questionId, status: 'public', on: true })).status).toBe(201);
    expect((await state(ann, room.id)).board.find((q) => q.questionId === questionId)).toMatchObject({ text: 'Is neon reactive?', public: true });
    expect((await act(ann, room.id, { type: 'board.upvote', questionId })).status).toBe(201);
    expect((await act(ann, room.id, { type: 'board.upvote', questionId })).body.error.code).toBe('already_upvoted');
    const teacherBoard = (await state(t, room.id)).board.find((q) => q.questionId === questionId);
    expect(teacherBoard).toMatchObject({ pinned: true, public: true, upvotes: 1, text: 'Is neon reactive?' });
  });

  it('refuses strangers (403), no session (401), a malformed action or one past its fields’ bounds (400), and a replay sends nothing new', async () => {
    const stranger = await makeUser(h, 'learner');
    expect((await act(stranger, room.id, { type: 'hand.raise', userId: stranger.id })).body.error.code).toBe('not_a_member');
    expect((await stranger.api.get(`/api/rooms/${room.id}/state`)).body.error.code).toBe('not_a_member');
    expect((await h.api.get(`/api/rooms/${room.id}/state`)).status).toBe(401);
    expect((await act(ann, room.id, { type: 'hand.raise' })).status).toBe(400);
    expect((await act(ann, room.id, { type: 'confetti.throw' })).status).toBe(400);
    const huge = await act(room.instructor, room.id, { type: 'view.show', step: 1, title: 'x'.repeat(200), pad: 'y'.repeat(20_000) });
    expect(huge.status).toBe(400);
    const bigPoll = await act(room.instructor, room.id, poll(uniqueName('big').slice(0, 40), { question: 'q'.repeat(500), choices: Array.from({ length: 10 }, () => 'c'.repeat(200)) }));
    expect(bigPoll.status).toBe(201);
    const before = (await resyncAll(room.instructor, room.id)).length;
    const id = uniqueName('v');
    expect((await act(room.instructor, room.id, { type: 'view.show', step: 4 }, 'everyone', id)).status).toBe(201);
    const again = await act(room.instructor, room.id, { type: 'view.show', step: 4 }, 'everyone', id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await resyncAll(room.instructor, room.id)).length).toBe(before + 1);
  });

  it('serves a late or returning page the same state as one that folded every message it received', async () => {
    const t = room.instructor;
    for (const step of [1, 2, 3]) expect((await act(t, room.id, { type: 'view.show', step, of: 3 })).status).toBe(201);
    expect((await act(ann, room.id, { type: 'view.show', step: 9 })).body.error.code).toBe('instructor_only_kind');
    for (const viewer of [t, ann, bob]) {
      const role = viewer === t ? 'instructor' : 'learner';
      const fold = new RoomStateFold({ userId: viewer.id, role });
      for (const m of await resyncAll(viewer, room.id)) fold.apply(m);
      const served = await state(viewer, room.id);
      expect(served.view?.step).toBe(3);
      expect({ ...served, through: 0 }).toEqual({ ...JSON.parse(JSON.stringify(fold.state)), through: 0 });
    }
  });
});
