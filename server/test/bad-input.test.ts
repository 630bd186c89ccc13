import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../src/sessions/session-store';
import { ApiClient } from './helpers/api-client';
import { chat, makeRoom, makeUser, startHarness, type Harness, type TestRoom, type TestUser } from './helpers/harness';

let h: Harness;
let room: TestRoom;
let learner: TestUser;

beforeAll(async () => {
  h = await startHarness();
  room = await makeRoom(h, 1);
  learner = room.learners[0]!;
});
afterAll(async () => {
  await h.close();
});

/** Total rows in every table a send writes; a refused request must leave them all unchanged. */
async function rowCounts(): Promise<string> {
  const { rows } = await h.server.services.pool.query(
    `SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM outbox) AS outbox,
            (SELECT last_seq FROM rooms WHERE id = $1) AS last_seq`,
    [room.id],
  );
  return JSON.stringify(rows[0]);
}

async function expectRefused(res: Promise<{ status: number; body: any }>, status: number, code: string): Promise<void> {
  const before = await rowCounts();
  const r = await res;
  expect(r.status).toBe(status);
  expect(r.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expect(await rowCounts()).toBe(before);
}

describe('bad input on send', () => {
  const path = (): string => `/api/rooms/${room.id}/messages`;

  it('refuses a body over 16 KiB with 413 body_too_large', async () => {
    await expectRefused(learner.api.post(path(), chat('x'.repeat(16 * 1024))), 413, 'body_too_large');
  });

  it('accepts a body of exactly 16 KiB', async () => {
    const text = 'y'.repeat(16 * 1024 - JSON.stringify({ text: '' }).length);
    const res = await learner.api.post(path(), chat(text));
    expect(res.status).toBe(201);
  });

  it('refuses a request over the request size limit with 413 payload_too_large', async () => {
    await expectRefused(learner.api.post(path(), chat('z'.repeat(100 * 1024))), 413, 'payload_too_large');
  });

  it('refuses invalid JSON with 400 invalid_json', async () => {
    await expectRefused(learner.api.request('POST', path(), '{"clientMsgId": "a", '), 400, 'invalid_json');
  });

  it('refuses wrong types and missing fields with 400 invalid_request naming the field', async () => {
    const cases: Record<string, unknown>[] = [
      { ...chat('a'), body: 'not an object' },
      { ...chat('a'), kind: 'shout' },
      { ...chat('a'), audience: 'everybody' },
      { ...chat('a'), clientMsgId: 42 },
      { ...chat('a'), clientMsgId: undefined },
      { ...chat('a'), audience: 'member' },
      { ...chat('a'), recipientId: learner.id },
      { ...chat('a'), extra: true },
      [] as unknown as Record<string, unknown>,
    ];
    for (const body of cases) {
      const before = await rowCounts();
      const res = await learner.api.post(path(), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(await rowCounts()).toBe(before);
    }
    const res = await learner.api.post(path(), { ...chat('a'), kind: 'shout' });
    expect(res.body.error.message).toMatch(/kind/);
  });

  it('refuses an unknown room with 404 room_not_found', async () => {
    await expectRefused(learner.api.post('/api/rooms/00000000-0000-4000-8000-000000000000/messages', chat('a')), 404, 'room_not_found');
    await expectRefused(learner.api.post('/api/rooms/not-a-uuid/messages', chat('a')), 404, 'room_not_found');
  });

  it('refuses a non-member with 403 not_a_member', async () => {
    const outsider = await makeUser(h, 'learner');
    await expectRefused(outsider.api.post(path(), chat('a')), 403, 'not_a_member');
  });

  it('refuses a recipient who is not in the room with 404 recipient_not_found', async () => {
    const outsider = await makeUser(h, 'learner');
    await expectRefused(learner.api.post(path(), chat('a', { audience: 'member', recipientId: outsider.id })), 404, 'recipient_not_found');
  });

  it('refuses missing, malformed, expired and revoked auth with 401 unauthenticated', async () => {
    const anonymous = new ApiClient(h.server.url);
    await expectRefused(anonymous.post(path(), chat('a')), 401, 'unauthenticated');
    await expectRefused(anonymous.request('POST', path(), JSON.stringify(chat('a')), { authorization: 'Basic abc' }), 401, 'unauthenticated');
    await expectRefused(anonymous.withToken('x'.repeat(43)).post(path(), chat('a')), 401, 'unauthenticated');

    const short = await makeUser(h, 'learner');
    await short.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    // A session made with a 1-second TTL expires in Redis like any other.
    const quick = new SessionStore(h.server.services.redis, { sessionSeconds: 1, brokerTokenSeconds: 1 });
    const expiring = await quick.create({ userId: short.id, username: short.username, displayName: short.username, role: 'learner' });
    expect((await short.api.withToken(expiring.token).get('/api/me')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1200));
    await expectRefused(short.api.withToken(expiring.token).post(path(), chat('a')), 401, 'unauthenticated');

    await short.api.post('/api/auth/logout');
    await expectRefused(short.api.post(path(), chat('a')), 401, 'unauthenticated');
  });
});

describe('other routes', () => {
  it('answers unknown routes with 404 not_found in the error shape', async () => {
    for (const res of [await h.api.get('/nope'), await h.api.get('/api/nope'), await learner.api.post('/api/rooms/x/y')]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('refuses a wrong password with 401 invalid_credentials and the same error for unknown users', async () => {
    const wrong = await h.api.post('/api/auth/login', { username: learner.username, password: 'nope-nope' });
    const unknown = await h.api.post('/api/auth/login', { username: 'nobody-here', password: 'nope-nope' });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.error.code).toBe('invalid_credentials');
  });

  it('lets only instructors create rooms, and refuses a bad invite code', async () => {
    const res = await learner.api.post('/api/rooms', { name: 'mine' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    const join = await learner.api.post('/api/rooms/join', { inviteCode: 'ZZZZZZZZ' });
    expect(join.status).toBe(404);
    expect(join.body.error.code).toBe('invite_not_found');
  });
});
