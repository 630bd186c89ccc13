import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { chat, makeRoom, startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { collect, connectStomp, waitFor, webStompUrl } from '../../testkit/stomp';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

async function consumeQueue(instructor: TestUser, roomId: string, node: number, ack: boolean): Promise<{ got: RoomMessage[]; stop: () => Promise<void> }> {
  const subs = await instructor.api.get(`/api/rooms/${roomId}/subscriptions`);
  const t = await instructor.api.post('/api/broker-token');
  const s = await connectStomp(webStompUrl(h.config, node), t.body.login, t.body.passcode);
  const got = await collect(s, subs.body.instructorQueue.destination, { ack: 'client-individual', 'prefetch-count': '50' }, (m) => {
    if (ack) m.ack();
  });
  return { got, stop: () => s.disconnect() };
}

describe('instructor queue', () => {
  it('keeps what was sent while the instructor was away and delivers it in order, once', async () => {
    const room = await makeRoom(h, 2);
    const [a, b] = room.learners as [TestUser, TestUser];
    // The instructor is not connected at all: learners post 20 messages, some only to instructors.
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const author = i % 2 === 0 ? a : b;
      const extra = i % 3 === 0 ? { audience: 'instructors', kind: 'question' } : {};
      const res = await author.api.post(`/api/rooms/${room.id}/messages`, chat(`m${i}`, extra));
      expect(res.status).toBe(201);
      sent.push(res.body.id);
    }

    const first = await consumeQueue(room.instructor, room.id, 1, true);
    await waitFor(() => first.got.length >= 20, 'the instructor to receive the backlog');
    expect(first.got.map((m) => m.id)).toEqual(sent);
    expect(first.got.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await first.stop();

    // Everything was acked: a later connection gets only what is new, nothing twice.
    const later = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat('after'));
    const second = await consumeQueue(room.instructor, room.id, 2, true);
    // A message still unacked would be redelivered ahead of anything new (a quorum queue hands out
    // returned messages first): once the new one is in, nothing old is still to come.
    await waitFor(() => second.got.some((m) => m.id === later.body.id), 'the new message');
    expect(second.got.map((m) => m.id)).toEqual([later.body.id]);
    await second.stop();
  });

  it('redelivers messages that were delivered but not acked', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const first = await consumeQueue(room.instructor, room.id, 0, false);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await learner.api.post(`/api/rooms/${room.id}/messages`, chat(`u${i}`))).body.id);
    await waitFor(() => first.got.length >= 3, 'unacked deliveries');
    await first.stop();

    const second = await consumeQueue(room.instructor, room.id, 1, true);
    await waitFor(() => second.got.length >= 3, 'redelivery');
    expect(second.got.map((m) => m.id)).toEqual(ids);
    await second.stop();
  });
});
