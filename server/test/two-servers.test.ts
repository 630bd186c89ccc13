import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../testkit/api-client';
import { chat, makeRoom, startHarness, type Harness } from '../../testkit/harness';

let one: Harness;
let two: Harness;
beforeAll(async () => {
  [one, two] = await Promise.all([startHarness(), startHarness()]);
});
afterAll(async () => {
  await Promise.all([one.close(), two.close()]);
});

describe('two app servers on one database', () => {
  it('give concurrent sends to one room a gapless sequence without duplicates', async () => {
    const room = await makeRoom(one, 3);
    const senders = [room.instructor, ...room.learners];
    const PER_SENDER_PER_SERVER = 15;
    const posts: Promise<{ status: number; body: any }>[] = [];
    const requests: Record<string, unknown>[] = [];
    for (const sender of senders) {
      for (const server of [one, two]) {
        const api = new ApiClient(server.server.url, sender.token);
        for (let i = 0; i < PER_SENDER_PER_SERVER; i++) {
          const req = chat(`${sender.username}-${i}`);
          requests.push(req);
          posts.push(api.post(`/api/rooms/${room.id}/messages`, req));
          // Every fourth request is also retried at once on the other server.
          if (i % 4 === 0) posts.push(new ApiClient((server === one ? two : one).server.url, sender.token).post(`/api/rooms/${room.id}/messages`, req));
        }
      }
    }
    const results = await Promise.all(posts);
    expect(results.every((r) => r.status === 201)).toBe(true);
    const total = senders.length * 2 * PER_SENDER_PER_SERVER;

    const { rows } = await one.server.services.pool.query<{ seq: number; client_msg_id: string }>(
      'SELECT seq, client_msg_id FROM messages WHERE room_id = $1 ORDER BY seq',
      [room.id],
    );
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.client_msg_id)).size).toBe(total);
    // Each response carries the seq of the single stored row for its client id.
    const seqByClientId = new Map(rows.map((r) => [r.client_msg_id, r.seq]));
    for (const r of results) expect(r.body.seq).toBe(seqByClientId.get(r.body.message.clientMsgId));
  });
});
