/**
 * The event stream (SSE) end to end: a real app server behind the real TLS proxy, the real
 * EventSource client (the `eventsource` package) driven by the web client library, Postgres and
 * Redis. The final lists are compared with the database's.
 */
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePosition, type EventPage, type RoomEvent, type RoomPosition } from '../../shared/protocol/events';
import { readerView, type Reader } from '../src/events/event-store';
import { RoomTails } from '../src/events/room-tails';
import { EventStreamClient, RoomcastApi, type EventStreamState, type RoomClientError } from '../../web/src/client/index';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { streamingHttpsFetch, type StreamingFetch } from '../../testkit/event-stream-fetch';
import { chat, makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestUser } from '../../testkit/harness';
import { waitFor } from '../../testkit/stomp';
import { startTestProxy, type TestProxy } from '../../testkit/test-proxy';
import { testConfig } from '../../testkit/test-config';

let h: Harness;
let certs: TestCertificates;
let tp: TestProxy;
let net: StreamingFetch;

beforeAll(async () => {
  h = await startHarness({ mail: false });
  certs = await makeTestCertificates();
  tp = await startTestProxy(certs, { app: [h.server.url] });
  net = streamingHttpsFetch(certs.ca);
});

afterAll(async () => {
  net?.close();
  await tp?.close();
  await h?.close();
  certs?.remove();
});

/** The web client library's stream client, through the proxy, as `user`. */
function streamClient(user: TestUser, options: { roomId?: string; lastEventId?: string; proxy?: TestProxy } = {}): Recorder {
  const api = new RoomcastApi({ baseUrl: (options.proxy ?? tp).url, token: user.token, fetch: net.fetch });
  const client = new EventStreamClient({
    api,
    ...(options.roomId === undefined ? {} : { roomId: options.roomId }),
    ...(options.lastEventId === undefined ? {} : { lastEventId: options.lastEventId }),
    EventSource: net.EventSource,
    reconnect: { initialMs: 50, maxMs: 400 },
  });
  return new Recorder(client);
}

/** What a client delivered, and a way to wait until something holds (checked on every change). */
class Recorder {
  readonly events: RoomEvent[] = [];
  readonly errors: { error: RoomClientError; fatal: boolean }[] = [];
  readonly resets: string[][] = [];
  readonly states: EventStreamState[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly client: EventStreamClient) {
    const changed = (): void => {
      for (const w of [...this.waiters]) w();
    };
    client.on('event', (e) => {
      this.events.push(e);
      changed();
    });
    client.on('error', (error, fatal) => {
      this.errors.push({ error, fatal });
      changed();
    });
    client.on('reset', (rooms) => {
      this.resets.push(rooms);
      changed();
    });
    client.on('state', (s) => {
      this.states.push(s);
      changed();
    });
    client.start();
  }

  get ids(): string[] {
    return this.events.map((e) => e.id);
  }

  /** Waits until `holds` is true; it is checked again on each of this client's events only. */
  until(what: string, holds: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!holds()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; had ${this.events.length} events, states ${this.states.join(' > ')}, errors ${this.errors.map((e) => e.error.code).join(', ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  live(): Promise<void> {
    return this.until('the stream to be live', () => this.client.state === 'live');
  }
}

/** A stream read raw over TLS: the bytes as they come (comments included), and its headers. */
interface RawStream {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  ended: boolean;
  /** The `event:` types received, in order. */
  types(): string[];
  waitFor(what: string, holds: (s: RawStream) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

function openRaw(path: string, headers: Record<string, string> = {}, proxy: TestProxy = tp): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${proxy.url}${path}`, { ca: certs.ca, agent: false, headers }, (res) => {
      const waiters = new Set<() => void>();
      const raw: RawStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: '',
        ended: false,
        types: () => [...raw.text.matchAll(/^event: (.*)$/gm)].map((m) => m[1] as string),
        waitFor: (what, holds, timeoutMs = 20_000) =>
          new Promise<void>((ok, fail) => {
            const check = (): void => {
              if (!holds(raw)) return;
              clearTimeout(timer);
              waiters.delete(check);
              ok();
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out waiting for ${what}; got ${JSON.stringify(raw.text.slice(-300))}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw.text += chunk;
        for (const w of [...waiters]) w();
      });
      res.on('close', () => {
        raw.ended = true;
        for (const w of [...waiters]) w();
      });
      res.on('error', () => undefined);
      resolve(raw);
    });
    req.on('error', reject);
  });
}

async function ticket(user: TestUser, roomId?: string): Promise<string> {
  const res = await user.api.post('/api/events/tickets', roomId === undefined ? {} : { roomId });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.expiresInSeconds).toBe(30);
  return res.body.ticket as string;
}

/** Everything the pull feed gives `user` at `path`: the database's answer to compare with. */
async function pullAll(user: TestUser, path: string): Promise<RoomEvent[]> {
  const events: RoomEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const res = await user.api.get<EventPage>(`${path}?limit=500${after === undefined ? '' : `&after=${after}`}`);
    expect(res.status).toBe(200);
    events.push(...res.body.events);
    after = res.body.next;
    if (!res.body.hasMore) return events;
  }
}

const post = async (user: TestUser, roomId: string, body: Record<string, unknown> = chat(uniqueName('m'))): Promise<string> => {
  const res = await user.api.post(`/api/rooms/${roomId}/messages`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
};

describe('resuming across dropped connections', () => {
  it('ends with exactly the database’s events, in order, however often the connection is cut', async () => {
    const room = await makeRoom(h, 2);
    const [ann, bob] = room.learners as [TestUser, TestUser];
    const teacher = streamClient(room.instructor, { roomId: room.id });
    const everything = streamClient(ann);
    try {
      await Promise.all([teacher.live(), everything.live()]);

      // Every 120 ms the open streams' connections are cut; posting goes on until ten cuts hit one.
      const ROUNDS = 10;
      let posting = true;
      let cuts = 0;
      const cutter = (async () => {
        while (posting) {
          await new Promise((r) => setTimeout(r, 120));
          if (net.cutStreams() > 0) cuts++;
        }
      })();
      await Promise.all(
        [room.instructor, ann, bob].map(async (poster) => {
          for (let i = 0; i < 25 || cuts < ROUNDS; i++) await post(poster, room.id);
        }),
      );
      posting = false;
      await cutter;
      expect(cuts).toBeGreaterThanOrEqual(ROUNDS);

      const { rows } = await h.server.services.pool.query<{ id: string }>('SELECT id FROM messages WHERE room_id = $1 ORDER BY seq', [room.id]);
      expect(rows.length).toBeGreaterThanOrEqual(75);
      const teacherExpected = await pullAll(room.instructor, `/api/rooms/${room.id}/events`);
      const annExpected = await pullAll(ann, '/api/events');
      await teacher.until('every event of the room', () => teacher.events.length >= teacherExpected.length);
      await everything.until('every event of ann’s rooms', () => everything.events.length >= annExpected.length);

      expect(teacher.ids).toEqual(teacherExpected.map((e) => e.id));
      expect(teacher.events.filter((e) => e.type === 'message.created').map((e) => e.id)).toEqual(rows.map((r) => r.id));
      expect(everything.ids).toEqual(annExpected.map((e) => e.id));
      for (const r of [teacher, everything]) {
        expect(new Set(r.ids).size).toBe(r.ids.length);
        expect(r.errors.filter((e) => e.fatal)).toEqual([]);
      }
    } finally {
      teacher.client.stop();
      everything.client.stop();
    }
  });

  it('takes a room joined while the stream of all rooms runs, from that room’s beginning', async () => {
    const learner = await makeUser(h, 'learner');
    const first = await makeRoom(h, 0);
    expect((await learner.api.post('/api/rooms/join', { inviteCode: first.inviteCode })).status).toBe(200);
    const all = streamClient(learner);
    try {
      await all.live();
      const second = await makeRoom(h, 0);
      const before = await post(second.instructor, second.id);
      expect((await learner.api.post('/api/rooms/join', { inviteCode: second.inviteCode })).status).toBe(200);
      const after = await post(second.instructor, second.id);
      await all.until('the new room’s messages', () => all.ids.includes(after));
      expect(all.ids).toEqual((await pullAll(learner, '/api/events')).map((e) => e.id));
      expect(all.ids).toContain(before);
    } finally {
      all.client.stop();
    }
  });

  it('delivers events committed while the stream opens and replays, once each', async () => {
    const room = await makeRoom(h, 1);
    for (let i = 0; i < 30; i++) await post(room.instructor, room.id);
    // Posting goes on while clients open, replay 30 messages, and go live.
    const posting = (async () => {
      for (let i = 0; i < 30; i++) await post(room.instructor, room.id);
    })();
    const readers = Array.from({ length: 5 }, () => streamClient(room.instructor, { roomId: room.id }));
    await posting;
    const expected = (await pullAll(room.instructor, `/api/rooms/${room.id}/events`)).map((e) => e.id);
    for (const r of readers) {
      await r.until('every event', () => r.events.length >= expected.length);
      expect(r.ids).toEqual(expected);
      r.client.stop();
    }
  });
});

describe('keeping the stream open', () => {
  it.concurrent('stays open through the proxy across 35 s of silence, with heartbeats, and still delivers', async () => {
    const room = await makeRoom(h, 0);
    const client = streamClient(room.instructor, { roomId: room.id });
    await client.live();
    const opened = client.states.length;
    const raw = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${await ticket(room.instructor, room.id)}`, { 'accept-encoding': 'gzip, br' });
    expect(raw.status).toBe(200);
    expect(raw.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(raw.headers['cache-control']).toBe('no-store');
    expect(raw.headers['x-accel-buffering']).toBe('no');
    expect(raw.headers['content-encoding']).toBeUndefined();
    expect(raw.text.startsWith('retry: ')).toBe(true);

    // Longer than the proxy's 30 s cut of a silent upstream: only the heartbeats pass.
    await new Promise((r) => setTimeout(r, 35_000));
    expect(raw.ended).toBe(false);
    expect(raw.text.match(/^: ping$/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(client.states.slice(opened)).toEqual([]);
    expect(client.errors).toEqual([]);

    const id = await post(room.instructor, room.id);
    await client.until('the message after the silence', () => client.ids.includes(id));
    await raw.waitFor('the message after the silence', (s) => s.text.includes(id));
    raw.close();
    client.client.stop();
  }, 60_000);

  it.concurrent('refuses a ticket used twice, for another stream, or older than 30 s', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0] as TestUser;
    const path = `/api/rooms/${room.id}/events/stream`;
    const t = await ticket(learner, room.id);
    const first = await openRaw(`${path}?ticket=${t}`);
    expect(first.status).toBe(200);
    const second = await openRaw(`${path}?ticket=${t}`);
    await second.waitFor('the answer', (s) => s.ended);
    expect([second.status, JSON.parse(second.text).error.code]).toEqual([401, 'invalid_ticket']);
    first.close();

    // A room's ticket does not open the stream of all rooms, nor another room's.
    const other = await makeRoom(h, 0);
    for (const wrong of ['/api/events/stream', `/api/rooms/${other.id}/events/stream`]) {
      const res = await openRaw(`${wrong}?ticket=${await ticket(learner, room.id)}`);
      await res.waitFor('the answer', (s) => s.ended);
      expect(res.status, wrong).toBe(401);
    }
    // Never the session token itself, nor no ticket at all.
    const token = await openRaw(`${path}?ticket=${learner.token}`);
    await token.waitFor('the answer', (s) => s.ended);
    expect(token.status).toBe(401);
    const none = await openRaw(path);
    await none.waitFor('the answer', (s) => s.ended);
    expect(none.status).toBe(400);
    // No ticket for a room the caller is not in.
    expect((await learner.api.post('/api/events/tickets', { roomId: other.id })).status).toBe(403);
    expect((await h.api.post('/api/events/tickets', {})).status).toBe(401);

    const stale = await ticket(learner, room.id);
    await new Promise((r) => setTimeout(r, 31_000));
    const late = await openRaw(`${path}?ticket=${stale}`);
    await late.waitFor('the answer', (s) => s.ended);
    expect([late.status, JSON.parse(late.text).error.code]).toEqual([401, 'invalid_ticket']);
  }, 60_000);

  it('ends the stream at its lifetime, and the client resumes without a gap', async () => {
    const short = await startHarness({ mail: false, config: testConfig({ ROOMCAST_STREAM_MAX_LIFETIME_MS: '1500' }) });
    const proxy = await startTestProxy(certs, { app: [short.server.url] });
    try {
      const room = await makeRoom(short, 0);
      const client = streamClient(room.instructor, { roomId: room.id, proxy });
      await client.live();
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        ids.push(await post(room.instructor, room.id));
        await new Promise((r) => setTimeout(r, 200));
      }
      await client.until('all 20 messages', () => ids.every((id) => client.ids.includes(id)));
      const messages = client.events.filter((e) => e.type === 'message.created').map((e) => e.id);
      expect(messages).toEqual(ids);
      // Several lifetimes went by: each a new connection, none an error.
      expect(client.states.filter((s) => s === 'live').length).toBeGreaterThanOrEqual(3);
      expect(client.errors).toEqual([]);
      client.client.stop();
    } finally {
      await proxy.close();
      await short.close();
    }
  });
});

describe('who may read', () => {
  it('never sends an instructors-only question to another learner’s stream', async () => {
    const room = await makeRoom(h, 2);
    const [asker, other] = room.learners as [TestUser, TestUser];
    const teacher = streamClient(room.instructor, { roomId: room.id });
    const otherRoom = streamClient(other, { roomId: room.id });
    const otherAll = streamClient(other);
    const askerRoom = streamClient(asker, { roomId: room.id });
    await Promise.all([teacher, otherRoom, otherAll, askerRoom].map((r) => r.live()));

    const question = await post(asker, room.id, { clientMsgId: uniqueName('q'), audience: 'instructors', kind: 'question', body: { text: 'just for you' } });
    const toBob = await post(room.instructor, room.id, { clientMsgId: uniqueName('p'), audience: 'member', recipientId: asker.id, kind: 'chat', body: { text: 'only for the asker' } });
    const after = await post(room.instructor, room.id);
    for (const r of [teacher, otherRoom, otherAll, askerRoom]) await r.until('the message to everyone', () => r.ids.includes(after));

    expect(teacher.ids).toEqual(expect.arrayContaining([question, toBob, after]));
    expect(askerRoom.ids).toEqual(expect.arrayContaining([question, toBob, after]));
    for (const r of [otherRoom, otherAll]) {
      expect(r.ids).not.toContain(question);
      expect(r.ids).not.toContain(toBob);
    }
    for (const r of [teacher, otherRoom, otherAll, askerRoom]) r.client.stop();
  });

  it('ends every stream of a session at logout, and a room’s stream when its member leaves', async () => {
    const room = await makeRoom(h, 2);
    const [leaver, loggedOut] = room.learners as [TestUser, TestUser];
    const a = streamClient(loggedOut, { roomId: room.id });
    const b = streamClient(loggedOut);
    const c = streamClient(leaver, { roomId: room.id });
    await Promise.all([a, b, c].map((r) => r.live()));

    expect((await loggedOut.api.post('/api/auth/logout')).status).toBe(204);
    for (const r of [a, b]) {
      await r.until('the end of the stream', () => r.errors.some((e) => e.fatal));
      expect(r.errors.map((e) => [e.error.code, e.fatal])).toEqual([['unauthenticated', true]]);
      expect(r.client.state).toBe('offline');
    }

    expect((await leaver.api.post(`/api/rooms/${room.id}/leave`)).status).toBe(204);
    await c.until('the end of the stream', () => c.errors.some((e) => e.fatal));
    expect(c.events.at(-1)).toMatchObject({ type: 'member.left', data: { userId: leaver.id } });
    expect(c.errors.map((e) => [e.error.code, e.fatal])).toEqual([['not_a_member', true]]);
    // The client hears the end before the proxy and the fetch have closed the socket under it.
    // The socket count is no client event, so it is polled rather than awaited through `until`.
    await waitFor(() => net.openStreams === 0, 'every stream connection to close', 20_000);
  });

  it('ends the streams of every session when the password changes', async () => {
    const user = await makeUser(h, 'learner');
    const stream = streamClient(user);
    await stream.live();
    const changed = await user.api.post('/api/auth/password', { currentPassword: 'test-password-1', newPassword: 'another-password-2' });
    expect(changed.status).toBe(200);
    await stream.until('the end of the stream', () => stream.errors.some((e) => e.fatal));
    expect(stream.errors.map((e) => e.error.code)).toEqual(['unauthenticated']);
  });

  it('refuses more than 10 streams of one user at once with 429, and frees a slot when one closes', async () => {
    const user = await makeUser(h, 'learner');
    const open: RawStream[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await openRaw(`/api/events/stream?ticket=${await ticket(user)}`);
      expect(s.status).toBe(200);
      open.push(s);
    }
    const refused = await openRaw(`/api/events/stream?ticket=${await ticket(user)}`);
    await refused.waitFor('the answer', (s) => s.ended);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text).error.code).toBe('too_many_streams');
    expect(refused.headers['retry-after']).toBe('5');

    open.shift()?.close();
    // The proxy ends the app server's side when the client leaves, and the slot is given back.
    const before = h.server.streams.size;
    for (let i = 0; i < 100 && h.server.streams.size >= before; i++) await new Promise((r) => setTimeout(r, 20));
    const again = await openRaw(`/api/events/stream?ticket=${await ticket(user)}`);
    expect(again.status).toBe(200);
    for (const s of [...open, again]) s.close();
  });
});

describe('one read of a room for all its streams', () => {
  it('gives every reader, from every position, exactly what its own read of Postgres gives', async () => {
    const room = await makeRoom(h, 2);
    const [ann, bob] = room.learners as [TestUser, TestUser];
    await post(room.instructor, room.id);
    await post(ann, room.id, { clientMsgId: uniqueName('q'), audience: 'instructors', kind: 'question', body: { text: 'q' } });
    await post(room.instructor, room.id, { clientMsgId: uniqueName('p'), audience: 'member', recipientId: bob.id, kind: 'chat', body: { text: 'p' } });
    const late = await makeUser(h, 'learner');
    expect((await late.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    await post(bob, room.id);
    expect((await bob.api.post(`/api/rooms/${room.id}/leave`)).status).toBe(204);
    await post(ann, room.id, { clientMsgId: uniqueName('q'), audience: 'instructors', kind: 'question', body: { text: 'q2' } });
    await post(room.instructor, room.id);

    const store = h.server.events.store;
    const START: RoomPosition = { seq: 0, n: 0 };
    const everyone: Reader = { id: '00000000-0000-0000-0000-000000000000', role: 'instructor' };
    const all = await store.roomEvents(room.id, everyone, START, 1000);
    const readers: Reader[] = [{ id: room.instructor.id, role: 'instructor' }, ...[ann, bob, late].map((u): Reader => ({ id: u.id, role: 'learner' }))];
    let compared = 0;
    // The tail may start anywhere: at the beginning, or at any instructor's position.
    for (const from of [START, ...all.events.map((e) => parsePosition(e.position) as RoomPosition)]) {
      const tail = await store.roomEvents(room.id, everyone, from, 1000);
      for (const reader of readers) {
        const own = await store.roomEvents(room.id, reader, START, 1000);
        const positions = [START, ...own.events.map((e) => parsePosition(e.position) as RoomPosition)].filter((p) => p.seq >= from.seq && p.n >= from.n);
        for (const after of positions) {
          for (const limit of [1000, 2]) {
            expect(readerView(reader, after, tail.events, tail.next, limit), `${reader.role} ${reader.id} after ${after.seq}.${after.n} from ${from.seq}.${from.n}`).toEqual(
              await store.roomEvents(room.id, reader, after, limit),
            );
            compared++;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  it('answers from a room’s tail as Postgres would, for every reader and position the tail holds', async () => {
    const room = await makeRoom(h, 2);
    const [ann, bob] = room.learners as [TestUser, TestUser];
    const store = h.server.events.store;
    const deps = { store, listener: h.server.events.listener, logger: h.server.logger };
    // A tail that keeps everything here, and one that keeps only the last 4 events.
    const tails = [new RoomTails(deps), new RoomTails({ ...deps, maxEvents: 4 })];
    const woken: (() => void)[] = [];
    const nextWake = (): Promise<void> => new Promise((r) => woken.push(r));
    const unfollows = tails.map((t) => t.follow(room.id, () => woken.splice(0).forEach((w) => w())));
    const instructor: Reader = { id: room.instructor.id, role: 'instructor' };
    try {
      const from = (await store.heads([room.id])).get(room.id) as RoomPosition;
      const bodies = [
        { audience: 'everyone', kind: 'chat', body: { text: 'a' } },
        { audience: 'instructors', kind: 'question', body: { text: 'q' } },
        { audience: 'member', recipientId: bob.id, kind: 'chat', body: { text: 'p' } },
      ];
      for (let i = 0; i < 9; i++) await post([room.instructor, ann, room.instructor][i % 3] as TestUser, room.id, { clientMsgId: uniqueName('m'), ...bodies[i % 3] });
      expect((await bob.api.post(`/api/rooms/${room.id}/leave`)).status).toBe(204);
      const last = await post(room.instructor, room.id);
      // The position just before the last message: inside both tails once they have read it.
      const everything = (await store.roomEvents(room.id, instructor, from, 1000)).events;
      const beforeLast = parsePosition(everything[everything.length - 2]?.position ?? '') as RoomPosition;
      const holds = (t: RoomTails): boolean => t.after(room.id, instructor, beforeLast, 10)?.events.some((e) => e.id === last) ?? false;
      while (!tails.every(holds)) await nextWake();

      const answered: [number, number] = [0, 0];
      let refused = 0;
      for (const reader of [instructor, { id: ann.id, role: 'learner' } as Reader, { id: bob.id, role: 'learner' } as Reader]) {
        const own = await store.roomEvents(room.id, reader, from, 1000);
        for (const after of [from, ...own.events.map((e) => parsePosition(e.position) as RoomPosition)]) {
          for (const limit of [1000, 2]) {
            const expected = await store.roomEvents(room.id, reader, after, limit);
            tails.forEach((t, i) => {
              const got = t.after(room.id, reader, after, limit);
              // Only the small tail may send a reader to Postgres: for positions before what it keeps.
              if (got === null && i === 1) refused++;
              else {
                expect(got, `tail ${i}: ${reader.id} after ${after.seq}.${after.n}`).toEqual(expected);
                answered[i as 0 | 1]++;
              }
            });
          }
        }
      }
      expect(refused).toBeGreaterThan(0);
      expect(answered[1]).toBeGreaterThan(0);
      expect(tails[0]?.after(room.id, instructor, { seq: 0, n: 0 }, 10)).toBeNull();
    } finally {
      for (const u of unfollows) u();
    }
    expect(tails.map((t) => t.rooms)).toEqual([0, 0]);
  });

  it('reads the room once per notification however many streams follow it', async () => {
    const room = await makeRoom(h, 20);
    const store = h.server.events.store;
    let reads = 0;
    const original = store.roomEvents.bind(store);
    store.roomEvents = (roomId, reader, after, limit) => {
      if (roomId === room.id) reads++;
      return original(roomId, reader, after, limit);
    };
    try {
      const clients = room.learners.map((l) => streamClient(l, { roomId: room.id }));
      await Promise.all(clients.map((c) => c.live()));
      await Promise.all(clients.map((c) => c.until('the replay', () => c.events.length >= 2)));
      reads = 0;
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await post(room.instructor, room.id));
      for (const c of clients) await c.until('all ten messages', () => ids.every((id) => c.ids.includes(id)));
      // Ten messages to twenty streams: a read per notification (fewer when they merge), not one per stream.
      expect(reads).toBeLessThanOrEqual(12);
      for (const c of clients) {
        expect(c.events.filter((e) => e.type === 'message.created').map((e) => e.id)).toEqual(ids);
        c.client.stop();
      }
    } finally {
      store.roomEvents = original;
    }
  });
});

describe('reset', () => {
  it('tells a client whose id is beyond the room to start over, and gives the room from its beginning', async () => {
    const room = await makeRoom(h, 1);
    for (let i = 0; i < 3; i++) await post(room.instructor, room.id);
    const history = await pullAll(room.instructor, `/api/rooms/${room.id}/events`);
    const expected = history.map((e) => e.id);

    // As after a restore from a backup: the client holds positions the room never reached.
    const raw = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${await ticket(room.instructor, room.id)}&lastEventId=999.1`);
    await raw.waitFor('the replay', (s) => expected.every((id) => s.text.includes(id)));
    expect(raw.types().slice(0, 2)).toEqual(['reset', 'resume']);
    expect(raw.text).toContain(`id: 0.0\nevent: reset\ndata: {"reason":"beyond_room","rooms":["${room.id}"]}`);
    raw.close();
    // The header wins over the query, and n counts as much as seq.
    const header = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${await ticket(room.instructor, room.id)}&lastEventId=3.3`, { 'last-event-id': '3.99' });
    await header.waitFor('the resume', (s) => s.types().includes('resume'));
    expect(header.types()[0]).toBe('reset');
    header.close();

    const client = streamClient(room.instructor, { roomId: room.id, lastEventId: '999.1' });
    await client.until('the room from its beginning', () => client.events.length >= expected.length);
    expect(client.resets).toEqual([[room.id]]);
    expect(client.ids).toEqual(expected);

    // The stream of all rooms resets only the room that is beyond.
    const mine = await pullAll(room.instructor, '/api/events');
    const cursor = Buffer.from(JSON.stringify({ [room.id]: '999.0' })).toString('base64url');
    const all = streamClient(room.instructor, { lastEventId: cursor });
    await all.until('the rooms from their beginning', () => all.events.length >= mine.length);
    expect(all.resets).toEqual([[room.id]]);
    expect(all.ids).toEqual(mine.map((e) => e.id));

    // A position the room has (its head) is no reset.
    const head = history.at(-1)?.position as string;
    const fine = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${await ticket(room.instructor, room.id)}&lastEventId=${head}`);
    await fine.waitFor('the resume', (s) => s.types().includes('resume'));
    expect(fine.types()).toEqual(['resume']);
    fine.close();
    client.client.stop();
    all.client.stop();
  });

  it('refuses an id that is not one it gave out, and leaves the ticket for a good one', async () => {
    const room = await makeRoom(h, 0);
    const roomTicket = await ticket(room.instructor, room.id);
    const res = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${roomTicket}&lastEventId=banana`);
    await res.waitFor('the answer', (s) => s.ended);
    expect([res.status, JSON.parse(res.text).error.code]).toEqual([400, 'invalid_cursor']);
    // The bad id did not use the ticket up: the same ticket still opens the stream.
    const again = await openRaw(`/api/rooms/${room.id}/events/stream?ticket=${roomTicket}`);
    await again.waitFor('the resume', (s) => s.types().includes('resume'));
    expect(again.status).toBe(200);
    again.close();

    // The same for the stream of all rooms, whose ids are cursors.
    const allTicket = await ticket(room.instructor);
    const bad = await openRaw(`/api/events/stream?ticket=${allTicket}`, { 'last-event-id': 'not-a-cursor!' });
    await bad.waitFor('the answer', (s) => s.ended);
    expect([bad.status, JSON.parse(bad.text).error.code]).toEqual([400, 'invalid_cursor']);
    const all = await openRaw(`/api/events/stream?ticket=${allTicket}`);
    await all.waitFor('the resume', (s) => s.types().includes('resume'));
    expect(all.status).toBe(200);
    all.close();
  });

  it('names a missing field as required and an unknown key as not allowed', async () => {
    const room = await makeRoom(h, 0);
    const missing = await openRaw(`/api/rooms/${room.id}/events/stream`);
    await missing.waitFor('the answer', (s) => s.ended);
    const body = JSON.parse(missing.text) as { error: { code: string; message: string; details: unknown } };
    expect([missing.status, body.error.code, body.error.message]).toEqual([400, 'invalid_request', 'invalid query: ticket: required']);
    expect(body.error.details).toEqual([{ path: 'ticket', message: 'required' }]);
    const unknown = await room.instructor.api.post('/api/events/tickets', { roomId: room.id, colour: 'red' });
    expect([unknown.status, unknown.body.error.details]).toEqual([400, [{ path: 'colour', message: 'unrecognized key: not allowed' }]]);
    expect(unknown.body.error.message).toContain('colour: unrecognized key: not allowed');
  });
});
