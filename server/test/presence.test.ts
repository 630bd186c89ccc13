import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PresenceStore } from '../src/presence/presence-store';
import { makeRoom, makeUser, startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { roomAllKey, exchangeDestination } from '../../shared/protocol/routing';
import { collect, connectStomp, waitFor, webStompUrl } from '../../testkit/stomp';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const presencePath = (roomId: string): string => `/api/rooms/${roomId}/presence`;

describe('presence routes', () => {
  it('counts members who sent a heartbeat; only instructors get the list', async () => {
    const room = await makeRoom(h, 2);
    const [a, b] = room.learners as [TestUser, TestUser];
    expect((await a.api.get(presencePath(room.id))).body).toEqual({ online: 0 });

    for (const u of [a, b, room.instructor]) expect((await u.api.post(presencePath(room.id))).status).toBe(204);

    expect((await b.api.get(presencePath(room.id))).body).toEqual({ online: 3 });
    const seen = await room.instructor.api.get(presencePath(room.id));
    expect(seen.body.online).toBe(3);
    expect(seen.body.members.map((m: { userId: string }) => m.userId).sort()).toEqual([a.id, b.id, room.instructor.id].sort());
    expect(seen.body.members.find((m: { userId: string }) => m.userId === a.id)).toEqual({ userId: a.id, displayName: a.username, role: 'learner' });
  });

  it('pushes a change of who is online to the room: the count to everyone, the list to the instructors, within moments and not per heartbeat', async () => {
    const room = await makeRoom(h, 2);
    const [a, b] = room.learners as [TestUser, TestUser];
    const subscribe = async (u: TestUser, destination: string): Promise<{ presence: { online: number; members?: { userId: string }[] } }[]> => {
      const token = (await u.api.post('/api/broker-token')).body;
      const stomp = await connectStomp(webStompUrl(h.config), token.login, token.passcode);
      closers.push(() => stomp.disconnect());
      return (await collect(stomp, destination)) as unknown as { presence: { online: number; members?: { userId: string }[] } }[];
    };
    const closers: (() => Promise<void>)[] = [];
    try {
      const learnerSees = await subscribe(a, exchangeDestination(roomAllKey(room.id)));
      const instructorSees = await subscribe(room.instructor, (await room.instructor.api.get(`/api/rooms/${room.id}/subscriptions`)).body.instructorQueue.destination);
      await a.api.post(presencePath(room.id));
      await waitFor(() => learnerSees.some((f) => f.presence?.online === 1), 'a pushed count of 1');
      await b.api.post(presencePath(room.id));
      await room.instructor.api.post(presencePath(room.id));
      await waitFor(() => learnerSees.some((f) => f.presence?.online === 3), 'a pushed count of 3');
      await waitFor(() => instructorSees.some((f) => f.presence?.members?.length === 3), 'the list of 3 to the instructor');
      // Learners get the count only, never the list.
      expect(learnerSees.every((f) => f.presence !== undefined && f.presence.members === undefined)).toBe(true);
      const pushes = learnerSees.length;
      // Heartbeats of members already online change nothing: nothing more is pushed.
      for (const u of [a, b]) await u.api.post(presencePath(room.id));
      await new Promise((r) => setTimeout(r, 600));
      expect(learnerSees).toHaveLength(pushes);
      expect((await b.api.request('DELETE', presencePath(room.id))).status).toBe(204);
      await waitFor(() => learnerSees.at(-1)?.presence.online === 2, 'a pushed count of 2 after a leave');
    } finally {
      for (const close of closers) await close();
    }
  });

  it('drops a member at once on an explicit leave', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    await learner.api.post(presencePath(room.id));
    await room.instructor.api.post(presencePath(room.id));
    expect((await learner.api.request('DELETE', presencePath(room.id))).status).toBe(204);
    const seen = await room.instructor.api.get(presencePath(room.id));
    expect(seen.body).toEqual({ online: 1, members: [{ userId: room.instructor.id, displayName: room.instructor.username, role: 'instructor' }] });
  });

  it('refuses the beats of a member removed while online, and forgets it at once', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    await room.instructor.api.post(presencePath(room.id));
    // Online, so its next beats refresh through Redis without asking Postgres...
    for (let i = 0; i < 2; i++) expect((await learner.api.post(presencePath(room.id))).status).toBe(204);
    expect((await room.instructor.api.request('DELETE', `/api/rooms/${room.id}/members/${learner.id}`)).status).toBe(204);
    // ...until the removal, which takes it out of the membership mirror first.
    const res = await learner.api.post(presencePath(room.id));
    expect([res.status, res.body.error.code]).toEqual([403, 'not_a_member']);
    expect((await room.instructor.api.get(presencePath(room.id))).body.online).toBe(1);
  });

  it('refuses non-members and anonymous callers', async () => {
    const room = await makeRoom(h, 0);
    const outsider = await makeUser(h, 'learner');
    for (const method of ['GET', 'POST', 'DELETE']) {
      const res = await outsider.api.request(method, presencePath(room.id));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('not_a_member');
      expect((await h.api.request(method, presencePath(room.id))).status).toBe(401);
    }
  });
});

describe('presence store', () => {
  it('forgets a member whose heartbeats stop, without any leave', async () => {
    const store = new PresenceStore(h.server.services.redis, { windowMs: 400 });
    const room = await makeRoom(h, 0);
    await store.beat(room.id, 'quiet');
    await store.beat(room.id, 'chatty');
    expect((await store.online(room.id)).sort()).toEqual(['chatty', 'quiet']);

    // "chatty" keeps beating, "quiet" went away (tab closed, socket died): once the window has
    // passed without a beat from "quiet", only "chatty" counts.
    await waitFor(async () => {
      await store.beat(room.id, 'chatty');
      return !(await store.online(room.id)).includes('quiet');
    }, '"quiet" to drop out of the window');
    expect(await store.online(room.id)).toEqual(['chatty']);
  });

  it('refreshes only a member already online, and counts one back from silence as an arrival', async () => {
    const store = new PresenceStore(h.server.services.redis, { windowMs: 1000 });
    const room = await makeRoom(h, 0);
    expect(await store.refresh(room.id, 'newcomer')).toBeNull();
    expect(await store.online(room.id)).toEqual([]);
    expect(await store.beat(room.id, 'newcomer')).toBe(true);
    expect(await store.refresh(room.id, 'newcomer')).toBe(false);
    expect(await store.beat(room.id, 'newcomer')).toBe(false);
    // A later beat keeps the set (it expires a window after the last beat of anyone)...
    await new Promise((r) => setTimeout(r, 700));
    await store.beat(room.id, 'steady');
    // ...while "newcomer" goes silent past the window but is not swept out yet (only beats
    // sweep): offline, so a refresh records nothing and a beat is an arrival, which pages must hear of.
    await waitFor(async () => !(await store.online(room.id)).includes('newcomer'), '"newcomer" to fall out of the window');
    expect(await h.server.services.redis.zscore(`rc:presence:${room.id}`, 'newcomer')).not.toBeNull();
    expect(await store.refresh(room.id, 'newcomer')).toBeNull();
    expect(await store.beat(room.id, 'newcomer')).toBe(true);
  });

  it('runs its scripts by hash, and by text once Redis has forgotten them (a restart)', async () => {
    const redis = h.server.services.redis;
    const store = new PresenceStore(redis, { windowMs: 5000 });
    const room = await makeRoom(h, 0);
    await store.beat(room.id, 'before');
    await redis.script('FLUSH');
    expect(await store.beat(room.id, 'after')).toBe(true);
    expect((await store.online(room.id)).sort()).toEqual(['after', 'before']);
    expect(await store.beat(room.id, 'after')).toBe(false);
  });

  it('lets the whole set expire when nobody beats', async () => {
    const store = new PresenceStore(h.server.services.redis, { windowMs: 200 });
    const room = await makeRoom(h, 0);
    await store.beat(room.id, 'someone');
    expect(await store.online(room.id)).toEqual(['someone']);
    await waitFor(async () => (await h.server.services.redis.exists(`rc:presence:${room.id}`)) === 0, 'the set to expire');
    expect(await store.online(room.id)).toEqual([]);
    expect(await h.server.services.redis.exists(`rc:presence:${room.id}`)).toBe(0);
  });
});

describe('static pages', () => {
  it('keeps JSON 404s under /api', async () => {
    const res = await h.api.get('/api/no-such-route');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });
});
