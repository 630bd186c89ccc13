import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, makeRoom, startHarness, type Harness } from '../../testkit/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const countRows = async (roomId: string): Promise<number> =>
  (await h.server.services.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM messages WHERE room_id = $1', [roomId])).rows[0]!.n;

describe('idempotent send', () => {
  it('returns the same message for a retried client message id and stores it once', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const req = chat('only once');
    const first = await learner.api.post(`/api/rooms/${room.id}/messages`, req);
    const retry = await learner.api.post(`/api/rooms/${room.id}/messages`, req);
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(await countRows(room.id)).toBe(1);
  });

  it('stores concurrent retries of one client message id once', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const req = chat('racing');
    const results = await Promise.all(Array.from({ length: 8 }, () => learner.api.post(`/api/rooms/${room.id}/messages`, req)));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(await countRows(room.id)).toBe(1);
    const outbox = await h.server.services.pool.query(`SELECT count(*)::int AS n FROM jobs WHERE queue = 'publish' AND ref = $1`, [results[0]!.body.id]);
    expect(outbox.rows[0].n).toBe(1);
  });

  it('refuses a client message id reused for different content', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const req = chat('original');
    await learner.api.post(`/api/rooms/${room.id}/messages`, req);
    const reused = await learner.api.post(`/api/rooms/${room.id}/messages`, { ...req, body: { text: 'changed' } });
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('idempotency_conflict');
    expect(await countRows(room.id)).toBe(1);
  });

  it('scopes client message ids to their sender', async () => {
    const room = await makeRoom(h, 2);
    const req = chat('same id, two people');
    const a = await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, req);
    const b = await room.learners[1]!.api.post(`/api/rooms/${room.id}/messages`, req);
    expect(a.body.id).not.toBe(b.body.id);
    expect(await countRows(room.id)).toBe(2);
  });
});
