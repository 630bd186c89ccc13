import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, queueDestination, instructorQueueName, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { collect, connectStomp, subscribeWithReceipt, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

let h: Harness;
const sessions: StompSession[] = [];

async function stompAs(user: TestUser, node = 0): Promise<StompSession> {
  const token = await user.api.post('/api/broker-token');
  expect(token.status).toBe(200);
  const s = await connectStomp(webStompUrl(h.config, node), token.body.login, token.body.passcode);
  sessions.push(s);
  return s;
}

/** Subscribes a learner to everything its room's subscription list offers. */
async function subscribeLearner(room: TestRoom, learner: TestUser, node = 0): Promise<RoomMessage[]> {
  const subs = await learner.api.get(`/api/rooms/${room.id}/subscriptions`);
  expect(subs.body.topics).toEqual([exchangeDestination(roomAllKey(room.id)), exchangeDestination(roomUserKey(room.id, learner.id))]);
  const s = await stompAs(learner, node);
  const all: RoomMessage[] = [];
  for (const t of subs.body.topics as string[]) {
    await subscribeWithReceipt(s, t, (m) => all.push(JSON.parse(m.body) as RoomMessage));
  }
  return all;
}

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.disconnect()));
  await h.close();
});

describe('delivery through the broker', () => {
  it('delivers a posted message to the subscribed learners of the room with its seq, and to no other room', async () => {
    const room = await makeRoom(h, 2);
    const other = await makeRoom(h, 1);
    const [l1, l2] = room.learners as [TestUser, TestUser];
    const got1 = await subscribeLearner(room, l1, 0);
    const got2 = await subscribeLearner(room, l2, 1);
    const gotOther = await subscribeLearner(other, other.learners[0] as TestUser, 2);

    const first = await l1.api.post(`/api/rooms/${room.id}/messages`, chat('hello'));
    const second = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('welcome'));
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect([first.body.seq, second.body.seq]).toEqual([1, 2]);

    await waitFor(() => got1.length >= 2 && got2.length >= 2, 'both learners to receive both messages');
    for (const got of [got1, got2]) {
      expect(got.map((m) => [m.id, m.seq, m.body.text])).toEqual([
        [first.body.id, 1, 'hello'],
        [second.body.id, 2, 'welcome'],
      ]);
    }
    // The other room's learner is subscribed on a third node and must see nothing of this room.
    await other.learners[0]!.api.post(`/api/rooms/${other.id}/messages`, chat('marker'));
    await waitFor(() => gotOther.length >= 1, 'the marker in the other room');
    expect(gotOther.map((m) => m.body.text)).toEqual(['marker']);
  });

  it('sends an instructors-only question to the instructor queue and to no learner', async () => {
    const room = await makeRoom(h, 2);
    const [asker, peer] = room.learners as [TestUser, TestUser];
    const askerGot = await subscribeLearner(room, asker);
    const peerGot = await subscribeLearner(room, peer);

    const subs = await room.instructor.api.get(`/api/rooms/${room.id}/subscriptions`);
    expect(subs.body.instructorQueue).toEqual({
      name: instructorQueueName(room.id, room.instructor.id),
      destination: queueDestination(instructorQueueName(room.id, room.instructor.id)),
    });
    const inst = await stompAs(room.instructor);
    const queue = await collect(inst, subs.body.instructorQueue.destination, { ack: 'client-individual' }, (m) => m.ack());

    const q = await asker.api.post(`/api/rooms/${room.id}/messages`, chat('what is a monad?', { audience: 'instructors', kind: 'question' }));
    expect(q.status).toBe(201);
    const reply = await room.instructor.api.post(
      `/api/rooms/${room.id}/messages`,
      chat('see me after class', { audience: 'member', recipientId: asker.id, kind: 'answer' }),
    );
    const marker = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('marker'));

    await waitFor(() => queue.length >= 3, 'the instructor queue to receive all three');
    expect(queue.map((m) => m.id)).toEqual([q.body.id, reply.body.id, marker.body.id]);
    await waitFor(() => askerGot.length >= 2 && peerGot.length >= 1, 'learners to receive their messages');
    // The asker gets the direct reply and the broadcast; the peer only the broadcast; nobody the question.
    expect(askerGot.map((m) => m.id).sort()).toEqual([reply.body.id, marker.body.id].sort());
    expect(peerGot.map((m) => m.id)).toEqual([marker.body.id]);
  });
});
