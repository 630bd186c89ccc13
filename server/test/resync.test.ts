import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';

let h: Harness;
let room: TestRoom;
let a: TestUser;
let b: TestUser;
const ids: Record<string, string> = {};

beforeAll(async () => {
  h = await startHarness();
  room = await makeRoom(h, 2);
  [a, b] = room.learners as [TestUser, TestUser];
  // seq 1..7: a mix of audiences
  const plan: [string, TestUser, Record<string, unknown>][] = [
    ['hello', a, {}],
    ['a-question', a, { audience: 'instructors', kind: 'question' }],
    ['broadcast', room.instructor, { kind: 'announcement' }],
    ['to-a', room.instructor, { audience: 'member', recipientId: '' }],
    ['b-question', b, { audience: 'instructors', kind: 'question' }],
    ['b-chat', b, {}],
    ['to-b', room.instructor, { audience: 'member', recipientId: '' }],
  ];
  for (const [text, author, extra] of plan) {
    if (extra.recipientId === '') extra.recipientId = text === 'to-a' ? a.id : b.id;
    const res = await author.api.post(`/api/rooms/${room.id}/messages`, chat(text, extra));
    expect(res.status).toBe(201);
    ids[text] = res.body.id;
  }
});
afterAll(async () => {
  await h.close();
});

async function all(user: TestUser, after = 0, limit = 100): Promise<RoomMessage[]> {
  const out: RoomMessage[] = [];
  for (;;) {
    const page = await user.api.get(`/api/rooms/${room.id}/messages?after=${after}&limit=${limit}`);
    expect(page.status).toBe(200);
    out.push(...page.body.messages);
    after = page.body.nextAfter;
    if (!page.body.hasMore) return out;
  }
}
const texts = (ms: RoomMessage[]): string[] => ms.map((m) => String(m.body.text));

describe('resync', () => {
  it('returns every message after the watermark, in seq order, to an instructor', async () => {
    const got = await all(room.instructor);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(texts(got)).toEqual(['hello', 'a-question', 'broadcast', 'to-a', 'b-question', 'b-chat', 'to-b']);
    expect(texts(await all(room.instructor, 4))).toEqual(['b-question', 'b-chat', 'to-b']);
  });

  it('pages with limit and nextAfter without gaps or repeats', async () => {
    const first = await room.instructor.api.get(`/api/rooms/${room.id}/messages?after=0&limit=3`);
    expect(first.body.messages.map((m: RoomMessage) => m.seq)).toEqual([1, 2, 3]);
    expect(first.body).toMatchObject({ hasMore: true, nextAfter: 3 });
    const paged = await all(room.instructor, 0, 2);
    expect(paged.map((m) => m.id)).toEqual((await all(room.instructor)).map((m) => m.id));
    const last = await room.instructor.api.get(`/api/rooms/${room.id}/messages?after=7`);
    expect(last.body).toEqual({ messages: [], hasMore: false, nextAfter: 7, through: 7, broadcastThrough: 3 });
  });

  it("shows a learner broadcasts, its own messages and what was addressed to it, never another learner's question or direct", async () => {
    expect(texts(await all(a))).toEqual(['hello', 'a-question', 'broadcast', 'to-a', 'b-chat']);
    expect(texts(await all(b))).toEqual(['hello', 'broadcast', 'b-question', 'b-chat', 'to-b']);
    // Paging a learner's view by small pages gives the same filtered list.
    expect(texts(await all(b, 0, 1))).toEqual(['hello', 'broadcast', 'b-question', 'b-chat', 'to-b']);
  });

  it('refuses non-members and bad watermarks', async () => {
    const outsider = (await makeRoom(h, 1)).learners[0]!;
    const res = await outsider.api.get(`/api/rooms/${room.id}/messages?after=0`);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('not_a_member');
    for (const q of ['after=-1', 'after=abc', 'limit=0', 'limit=501', 'bogus=1', 'personalAfter=-1', 'personalAfter=x', 'personalAfter=1e20', 'after=1.5']) {
      const bad = await a.api.get(`/api/rooms/${room.id}/messages?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.body.error.code).toBe('invalid_request');
    }
  });
});
