import { afterAll, describe, expect, it } from 'vitest';
import { startApp, stopApp } from '../../infra/rabbitmq-cluster';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import { sendMessageRequest } from '../../shared/protocol/messages';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from './helpers/harness';
import { collect, connectStomp, waitFor, webStompUrl, type StompSession } from './helpers/stomp';

const harnesses: Harness[] = [];
const sessions: StompSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.disconnect()));
  await Promise.all(harnesses.map((h) => h.close()));
});

async function harness(relay: boolean): Promise<Harness> {
  const h = await startHarness({ relay });
  harnesses.push(h);
  return h;
}

async function stompAs(h: Harness, user: TestUser, node: number): Promise<StompSession> {
  const t = await user.api.post('/api/broker-token');
  const s = await connectStomp(webStompUrl(h.config, node), t.body.login, t.body.passcode);
  sessions.push(s);
  return s;
}

/** A learner on the room key and the instructor on its queue, counting what arrives. */
async function listeners(h: Harness, room: TestRoom): Promise<{ learner: RoomMessage[]; instructor: RoomMessage[] }> {
  const learner = await collect(await stompAs(h, room.learners[0]!, 0), exchangeDestination(roomAllKey(room.id)));
  const subs = await room.instructor.api.get(`/api/rooms/${room.id}/subscriptions`);
  const instructor = await collect(await stompAs(h, room.instructor, 1), subs.body.instructorQueue.destination, { ack: 'client-individual' }, (m) => m.ack());
  return { learner, instructor };
}

const backlog = async (h: Harness, roomId: string): Promise<number> =>
  (
    await h.server.services.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.room_id = $1 AND o.published_at IS NULL',
      [roomId],
    )
  ).rows[0]!.n;

describe('outbox relay', () => {
  it('accepts sends while the whole broker is down and delivers every one, once, after it returns', async () => {
    const h = await harness(false);
    const room = await makeRoom(h, 1);
    const nodes = h.config.rabbitmq.nodes.map((n) => n.index);

    for (const i of [...nodes].reverse()) await stopApp(h.config, i);
    try {
      await waitFor(() => h.server.broker.status !== 'connected', 'the app server to notice the broker is gone');
      const N = 25;
      const sent: string[] = [];
      for (let i = 0; i < N; i++) {
        const res = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat(`offline-${i}`));
        expect(res.status).toBe(201);
        sent.push(res.body.id);
      }
      expect(await backlog(h, room.id)).toBe(N);
    } finally {
      await Promise.all(nodes.map((i) => startApp(h.config, i)));
    }
    await waitFor(() => h.server.broker.status === 'connected', 'the app server to reconnect', 30_000);

    const got = await listeners(h, room);
    h.server.relay.start();
    await waitFor(() => got.learner.length >= 25 && got.instructor.length >= 25, 'every message at both listeners', 30_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(got.learner.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(got.instructor.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(await backlog(h, room.id)).toBe(0);
  });

  it('publishes messages committed by a server that died before publishing, once, with two relays running', async () => {
    const writer = await harness(false);
    const room = await makeRoom(writer, 1);
    const got = await listeners(writer, room);
    // Commit without publishing: exactly what a crash between commit and publish leaves behind.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const req = sendMessageRequest.parse(chat(`orphan-${i}`));
      ids.push((await writer.server.services.messages.insert(room.id, room.learners[0]!.id, req)).message.id);
    }
    expect(await backlog(writer, room.id)).toBe(40);

    await Promise.all([harness(true), harness(true)]);
    await waitFor(() => got.learner.length >= 40 && got.instructor.length >= 40, 'the relays to publish the orphans', 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    // Relays split the backlog between them, so arrival order may interleave; each message
    // arrives exactly once, and the client orders by seq.
    const bySeq = (ms: RoomMessage[]): string[] => [...ms].sort((x, y) => x.seq - y.seq).map((m) => m.id);
    expect(got.learner).toHaveLength(40);
    expect(got.instructor).toHaveLength(40);
    expect(bySeq(got.learner)).toEqual(ids);
    expect(bySeq(got.instructor)).toEqual(ids);
    expect(await backlog(writer, room.id)).toBe(0);
  });
});
