import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPage, RoomEvent } from '../../shared/protocol/events';
import { chat, makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestUser } from '../../testkit/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ mail: false });
});
afterAll(() => h.close());

/** Every event after `after`, following `next` until the feed says there is no more. */
async function pullAll(user: TestUser, path: string, after?: string, limit = 7): Promise<{ events: RoomEvent[]; next: string }> {
  const events: RoomEvent[] = [];
  let cursor = after;
  for (;;) {
    const q = new URLSearchParams({ limit: String(limit), ...(cursor === undefined ? {} : { after: cursor }) });
    const res = await user.api.get<EventPage>(`${path}?${q}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    events.push(...res.body.events);
    cursor = res.body.next;
    if (!res.body.hasMore) return { events, next: cursor };
  }
}

const summary = (events: RoomEvent[]): string[] =>
  events.map((e) => (e.type === 'message.created' ? `${e.seq}:${(e.data.message.body as { text: string }).text}` : `${e.type}:${e.data.userId}`));

describe('pull feed', () => {
  it('gives each reader the room’s events in commit order, as far as they may see them, and resumes exactly from any position', async () => {
    const room = await makeRoom(h, 2);
    const [ann, bob] = room.learners as [TestUser, TestUser];
    const post = async (from: TestUser, body: Record<string, unknown>): Promise<void> => {
      const res = await from.api.post(`/api/rooms/${room.id}/messages`, { clientMsgId: uniqueName('m'), ...body });
      expect(res.status).toBe(201);
    };
    await post(room.instructor, { audience: 'everyone', kind: 'chat', body: { text: 'hello all' } });
    await post(ann, { audience: 'instructors', kind: 'question', body: { text: 'only for instructors' } });
    await post(room.instructor, { audience: 'member', recipientId: bob.id, kind: 'chat', body: { text: 'only for bob' } });
    expect((await bob.api.post(`/api/rooms/${room.id}/leave`)).status).toBe(204);
    await post(ann, { audience: 'everyone', kind: 'chat', body: { text: 'after bob left' } });

    const all = (await pullAll(room.instructor, `/api/rooms/${room.id}/events`)).events;
    expect(summary(all)).toEqual([
      `room.created:${room.instructor.id}`,
      `member.joined:${room.instructor.id}`,
      `member.joined:${ann.id}`,
      `member.joined:${bob.id}`,
      '1:hello all',
      '2:only for instructors',
      '3:only for bob',
      `member.left:${bob.id}`,
      '4:after bob left',
    ]);
    // Every event carries a stable id: the same in every read.
    expect((await pullAll(room.instructor, `/api/rooms/${room.id}/events`, undefined, 100)).events.map((e) => e.id)).toEqual(all.map((e) => e.id));
    // Any event's position resumes right after it.
    for (let i = 0; i < all.length; i++) {
      const rest = await pullAll(room.instructor, `/api/rooms/${room.id}/events`, all[i]!.position);
      expect(rest.events.map((e) => e.id)).toEqual(all.slice(i + 1).map((e) => e.id));
    }

    // A learner: the room's creation, their own join, what resync shows them.
    expect(summary((await pullAll(ann, `/api/rooms/${room.id}/events`)).events)).toEqual([
      `room.created:${room.instructor.id}`,
      `member.joined:${ann.id}`,
      '1:hello all',
      '2:only for instructors',
      '4:after bob left',
    ]);
    const otherLearner = await makeUser(h, 'learner');
    expect((await otherLearner.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const seen = summary((await pullAll(otherLearner, `/api/rooms/${room.id}/events`)).events);
    expect(seen).not.toContain('2:only for instructors');
    expect(seen).not.toContain('3:only for bob');
    // Bob left: the room is closed to him.
    expect((await bob.api.get(`/api/rooms/${room.id}/events`)).status).toBe(403);
  });

  it('loses nothing across rooms while many post and a client pulls in a loop', async () => {
    const instructor = await makeUser(h, 'instructor');
    const rooms: { id: string; posters: TestUser[] }[] = [];
    for (let r = 0; r < 5; r++) {
      const created = await instructor.api.post('/api/rooms', { name: uniqueName('feed') });
      const posters: TestUser[] = [];
      for (let p = 0; p < 2; p++) {
        const l = await makeUser(h, 'learner');
        expect((await l.api.post('/api/rooms/join', { inviteCode: created.body.room.inviteCode })).status).toBe(200);
        posters.push(l);
      }
      rooms.push({ id: created.body.room.id, posters });
    }
    const got = new Map<string, RoomEvent[]>();
    let cursor: string | undefined;
    let posting = true;
    const puller = (async () => {
      for (;;) {
        const done = !posting;
        const page = await pullAll(instructor, '/api/events', cursor, 13);
        for (const e of page.events) got.set(e.roomId, [...(got.get(e.roomId) ?? []), e]);
        cursor = page.next;
        if (done) return;
      }
    })();
    await Promise.all(
      rooms.flatMap((room) => room.posters.map(async (p) => {
        for (let i = 0; i < 15; i++) expect((await p.api.post(`/api/rooms/${room.id}/messages`, chat(`m${i}`))).status).toBe(201);
      })),
    );
    posting = false;
    await puller;
    for (const room of rooms) {
      const { rows } = await h.server.services.pool.query<{ id: string }>('SELECT id FROM messages WHERE room_id = $1 ORDER BY seq', [room.id]);
      const messages = (got.get(room.id) ?? []).filter((e) => e.type === 'message.created');
      expect(messages.map((e) => e.id)).toEqual(rows.map((r) => r.id));
      expect(messages.map((e) => e.seq)).toEqual(rows.map((_r, i) => i + 1));
      expect(new Set((got.get(room.id) ?? []).map((e) => e.id)).size).toBe((got.get(room.id) ?? []).length);
    }
  });

  it('refuses a cursor it did not give out with 400 invalid_cursor', async () => {
    const room = await makeRoom(h, 0);
    for (const after of ['x', '1', '-1.0', '1.2.3', '01.0', '1234567890123456.0', '0.9999999999999999']) {
      const res = await room.instructor.api.get(`/api/rooms/${room.id}/events?after=${after}`);
      expect([res.status, res.body.error.code], after).toEqual([400, 'invalid_cursor']);
    }
    for (const after of ['!!', Buffer.from('[1]').toString('base64url'), Buffer.from('{"not-a-room":"1.0"}').toString('base64url'), Buffer.from('{"5b0c3c2e-0000-4000-8000-000000000001":"x"}').toString('base64url')]) {
      const res = await room.instructor.api.get(`/api/events?after=${after}`);
      expect([res.status, res.body.error.code], after).toEqual([400, 'invalid_cursor']);
    }
    expect((await room.instructor.api.get(`/api/events?limit=0`)).status).toBe(400);
    expect((await h.api.get(`/api/events`)).status).toBe(401);
  });

  it('refuses a position beyond the room\u2019s newest event (a restored database, a made-up cursor) with 400 invalid_cursor', async () => {
    const room = await makeRoom(h, 1);
    const [ann] = room.learners as [TestUser];
    for (const text of ['one', 'two']) expect((await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat(text))).status).toBe(201);
    const cursorOf = (entries: Record<string, string>): string => Buffer.from(JSON.stringify(entries)).toString('base64url');

    // The room's head: 2 messages, and 3 other events (room.created, 2 × member.joined).
    for (const user of [room.instructor, ann]) {
      const { next } = await pullAll(user, `/api/rooms/${room.id}/events`);
      expect(next).toBe('2.3');
      const fromHead = await user.api.get<EventPage>(`/api/rooms/${room.id}/events?after=${next}`);
      expect([fromHead.status, fromHead.body.events]).toEqual([200, []]);
      for (const after of ['3.3', '2.4', '999.0', '0.99']) {
        const res = await user.api.get(`/api/rooms/${room.id}/events?after=${after}`);
        expect([res.status, res.body.error?.code], after).toEqual([400, 'invalid_cursor']);
        expect(res.body.error.message).toMatch(/beyond the room.s newest event \(was the database restored\?\).*start again without `after`/);
      }
    }

    // All rooms: an entry beyond one of the caller's rooms is refused; the feed's own `next` is not.
    const { next } = await pullAll(ann, '/api/events');
    expect((await ann.api.get(`/api/events?after=${next}`)).status).toBe(200);
    for (const entry of ['3.0', '2.4']) {
      const res = await ann.api.get(`/api/events?after=${cursorOf({ [room.id]: entry })}`);
      expect([res.status, res.body.error?.code], entry).toEqual([400, 'invalid_cursor']);
      expect(res.body.error.message).toContain(room.id);
      expect(res.body.error.message).toMatch(/beyond the room.s newest event/);
    }
    // A room the caller is not in is ignored, as the feed ignores it, and its head is not told.
    const other = await makeRoom(h, 0);
    expect((await ann.api.get(`/api/events?after=${cursorOf({ [room.id]: '2.3', [other.id]: '999.0' })}`)).status).toBe(200);
  });
});
