import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SendMessageRequest } from '../../shared/protocol/messages';
import type { StoreResult } from '../src/messages/message-store';
import { chat as chatRequest, makeRoom, makeUser, startHarness, type Harness, type TestRoom } from '../../testkit/harness';

let h: Harness;
const chat = (text: string): SendMessageRequest => chatRequest(text) as SendMessageRequest;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe('group commit of sends', () => {
  it('commits a burst of sends to several rooms in fewer transactions, each send answered with its own row, seqs gapless', async () => {
    const rooms: TestRoom[] = [];
    for (let i = 0; i < 4; i++) rooms.push(await makeRoom(h, 2));
    const store = h.server.services.messages;
    const sends = rooms.flatMap((room, r) =>
      Array.from({ length: 60 }, (_, i) => ({ room, sender: room.learners[i % 2]!, req: chat(`room ${r} message ${i}`) })),
    );
    const results = await Promise.all(sends.map((s) => store.insert(s.room.id, s.sender.id, s.req)));

    for (const [i, s] of sends.entries()) {
      const r = results[i] as StoreResult;
      expect(r.replayed).toBe(false);
      expect(r.message).toMatchObject({ roomId: s.room.id, senderId: s.sender.id, clientMsgId: s.req.clientMsgId, body: s.req.body });
    }
    for (const room of rooms) {
      // Concurrent sends have no order of their own; each gets a seq of its own, with no gap.
      const seqs = sends.flatMap((s, i) => (s.room === room ? [results[i]!.message.seq] : []));
      expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    }
    // Rows committed by one transaction share its xmin: fewer transactions than sends is the group commit.
    const { rows } = await h.server.services.pool.query<{ sends: number; transactions: number; jobs: number }>(
      `SELECT count(*)::int AS sends, count(DISTINCT m.xmin::text)::int AS transactions, count(j.id)::int AS jobs
         FROM messages m LEFT JOIN jobs j ON j.queue = 'publish' AND j.ref = m.id::text WHERE m.room_id = ANY($1::uuid[])`,
      [rooms.map((r) => r.id)],
    );
    expect(rows[0]).toMatchObject({ sends: 240, jobs: 240 });
    expect(rows[0]!.transactions).toBeLessThan(240);
  });

  it('answers each send of a batch on its own: a replay, a stranger and a malformed send fail or replay alone', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const stranger = await makeUser(h, 'learner');
    const store = h.server.services.messages;
    const repeated = chat('sent twice in one burst');
    const burst: Promise<StoreResult>[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 10) burst.push(store.insert(room.id, learner.id, repeated));
      else if (i === 20) burst.push(store.insert(room.id, stranger.id, chat('not a member')));
      else if (i === 25) burst.push(store.insert('not-a-uuid', learner.id, chat('no such room id')));
      else if (i === 30) burst.push(store.insert(room.id, learner.id, repeated));
      else burst.push(store.insert(room.id, learner.id, chat(`ok ${i}`)));
    }
    const settled = await Promise.allSettled(burst);
    const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [i] : []));
    expect(failed).toEqual([20, 25]);
    expect((settled[20] as PromiseRejectedResult).reason).toMatchObject({ code: 'not_a_member' });
    const first = (settled[10] as PromiseFulfilledResult<StoreResult>).value;
    const again = (settled[30] as PromiseFulfilledResult<StoreResult>).value;
    expect(again).toMatchObject({ replayed: true, message: { id: first.message.id } });
    const { rows } = await h.server.services.pool.query<{ n: number; max: number }>('SELECT count(*)::int AS n, max(seq)::int AS max FROM messages WHERE room_id = $1', [room.id]);
    // 40 sends: two failed and one replayed its twin, so 37 rows, seqs 1..37.
    expect(rows[0]).toEqual({ n: 37, max: 37 });
    // A room that does not exist is a 404, however the send is batched.
    await expect(store.insert(randomUUID(), learner.id, chat('nowhere'))).rejects.toMatchObject({ code: 'room_not_found' });
  });
});
