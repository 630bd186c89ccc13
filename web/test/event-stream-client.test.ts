/**
 * The event stream client against a scripted server: tickets from a fake fetch, streams from a
 * fake EventSource, time faked. Each test plays what a server or the network does (drops,
 * replays, lifetime ends, resets, revocation) and checks what the application sees.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomEvent } from '../../shared/protocol/events';
import { EventStreamClient, type EventStreamState, type RoomClientError } from '../src/client/index';
import { FakeEventSources } from './fake-event-source';
import { FakeFetch, apiError, json, type Reply } from './fake-fetch';

const ROOM = '6f1c4b5e-8a3d-4c2b-9e7f-0a1b2c3d4e5f';
const OTHER = '7a2d5c6f-9b4e-4d3c-8f80-1b2c3d4e5f60';
const TICKETS = '/api/events/tickets';

/** A message event of `room` at seq `seq` (position "<seq>.<n>"). */
const message = (seq: number, n = 0, room = ROOM): RoomEvent => ({
  id: `m-${room.slice(0, 4)}-${seq}`,
  type: 'message.created',
  roomId: room,
  seq,
  position: `${seq}.${n}`,
  createdAt: '2026-03-02T09:00:00.000Z',
  data: {
    message: {
      id: `m-${room.slice(0, 4)}-${seq}`,
      roomId: room,
      seq,
      senderId: 'u-1',
      audience: 'everyone',
      recipientId: null,
      kind: 'chat',
      body: { text: `m${seq}` },
      clientMsgId: `c${seq}`,
      createdAt: '2026-03-02T09:00:00.000Z',
      broadcastSeq: seq,
    },
  },
});

const joined = (n: number, afterSeq = 0): RoomEvent => ({
  id: `j-${n}`,
  type: 'member.joined',
  roomId: ROOM,
  seq: null,
  position: `${afterSeq}.${n}`,
  createdAt: '2026-03-02T09:00:00.000Z',
  data: { userId: `u-${n}`, role: 'learner' },
});

/** Sends a room event as the server does: its type, the event, its position as the id. */
const push = (source: { send(type: string, data: unknown, id?: string): unknown }, e: RoomEvent, id = e.position): void => {
  source.send(e.type, e, id);
};

function setup(options: { roomId?: string | null; lastEventId?: string; tickets?: (nth: number) => Reply } = {}) {
  const server = new FakeFetch().on('POST', TICKETS, (_r, nth) => options.tickets?.(nth) ?? json(200, { ticket: `t${nth}`, expiresInSeconds: 30 }));
  const sources = new FakeEventSources();
  const roomId = options.roomId === null ? undefined : (options.roomId ?? ROOM);
  const client = new EventStreamClient({
    api: server.api(),
    ...(roomId === undefined ? {} : { roomId }),
    ...(options.lastEventId === undefined ? {} : { lastEventId: options.lastEventId }),
    EventSource: sources.EventSource,
    reconnect: { initialMs: 100, maxMs: 1000 },
  });
  const events: RoomEvent[] = [];
  const states: EventStreamState[] = [];
  const errors: { error: RoomClientError; fatal: boolean }[] = [];
  const resets: string[][] = [];
  client.on('event', (e) => events.push(e));
  client.on('state', (s) => states.push(s));
  client.on('error', (error, fatal) => errors.push({ error, fatal }));
  client.on('reset', (rooms) => resets.push(rooms));
  return { server, sources, client, events, states, errors, resets, ids: () => events.map((e) => e.id) };
}

/** Lets the client's promises and timers run (fake time moves by `ms`). */
const wait = (ms = 0): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('opening', () => {
  it('gets a ticket for the room and opens its stream with it, live once the server accepts', async () => {
    const t = setup();
    t.client.start();
    await wait();
    expect(t.server.seen('POST', TICKETS)[0]?.body).toEqual({ roomId: ROOM });
    expect(t.sources.latest.path).toBe(`/api/rooms/${ROOM}/events/stream`);
    expect(t.sources.latest.query).toEqual({ ticket: 't1' });
    expect(t.client.state).toBe('connecting');
    t.sources.latest.accept();
    push(t.sources.latest, joined(1));
    push(t.sources.latest, message(1, 1));
    expect(t.client.state).toBe('live');
    expect(t.ids()).toEqual(['j-1', 'm-6f1c-1']);
    expect(t.client.lastEventId).toBe('1.1');
    t.client.stop();
  });

  it('opens the stream of all rooms without a room, and never sends the session token in the URL', async () => {
    const t = setup({ roomId: null });
    t.client.start();
    await wait();
    expect(t.server.seen('POST', TICKETS)[0]?.body).toEqual({});
    expect(t.sources.latest.path).toBe('/api/events/stream');
    expect(t.sources.latest.url).not.toContain('session-token');
    t.client.stop();
  });

  it('starts after a given id, and counts it as delivered', async () => {
    const t = setup({ lastEventId: '5.2' });
    t.client.start();
    await wait();
    expect(t.sources.latest.query).toEqual({ ticket: 't1', lastEventId: '5.2' });
    t.sources.latest.accept('5.2');
    push(t.sources.latest, message(5, 2));
    push(t.sources.latest, message(6, 2));
    expect(t.ids()).toEqual(['m-6f1c-6']);
    t.client.stop();
  });

  it('refuses unknown options and a runtime without EventSource', () => {
    const api = new FakeFetch().api();
    expect(() => new EventStreamClient({ api, roomID: ROOM } as never)).toThrow(/unknown option roomID/);
    expect(() => new EventStreamClient({ api })).toThrow(/no EventSource/);
  });
});

describe('resuming', () => {
  it('after a drop, closes the source, gets a new ticket and resumes after the last event delivered', async () => {
    const t = setup();
    t.client.start();
    await wait();
    const first = t.sources.latest;
    first.accept();
    push(first, message(1));
    push(first, message(2));
    first.fail();
    expect(first.closed).toBe(true);
    await wait();
    expect(t.client.state).toBe('offline');
    await wait(100);
    expect(t.sources.opened).toHaveLength(2);
    expect(t.sources.latest.query).toEqual({ ticket: 't2', lastEventId: '2.0' });
    t.sources.latest.accept('2.0');
    push(t.sources.latest, message(3));
    expect(t.ids()).toEqual(['m-6f1c-1', 'm-6f1c-2', 'm-6f1c-3']);
    t.client.stop();
  });

  it('never delivers an event twice, even when a stream replays what was delivered', async () => {
    const t = setup();
    t.client.start();
    await wait();
    t.sources.latest.accept();
    push(t.sources.latest, message(1));
    push(t.sources.latest, joined(1, 1));
    push(t.sources.latest, message(2, 1));
    t.sources.latest.fail();
    await wait(100);
    // A server that resumed from too far back: everything up to 2.1 again, then new events.
    const again = t.sources.latest;
    again.accept();
    push(again, message(1));
    push(again, joined(1, 1));
    push(again, message(2, 1));
    push(again, message(3, 1));
    push(again, message(3, 1));
    expect(t.ids()).toEqual(['m-6f1c-1', 'j-1', 'm-6f1c-2', 'm-6f1c-3']);
    t.client.stop();
  });

  it('keeps rooms apart on the stream of all rooms: ids are cursors, order is per room', async () => {
    const t = setup({ roomId: null });
    t.client.start();
    await wait();
    const s = t.sources.latest;
    s.accept();
    push(s, message(1, 0, ROOM), 'cursor-1');
    push(s, message(1, 0, OTHER), 'cursor-2');
    push(s, message(1, 0, OTHER), 'cursor-2');
    push(s, message(2, 0, ROOM), 'cursor-3');
    expect(t.ids()).toEqual(['m-6f1c-1', 'm-7a2d-1', 'm-6f1c-2']);
    expect(t.client.lastEventId).toBe('cursor-3');
    s.fail();
    await wait(100);
    expect(t.sources.latest.query.lastEventId).toBe('cursor-3');
    t.client.stop();
  });

  it('backs off while opening fails, and starts over once a stream was accepted', async () => {
    const t = setup();
    t.client.start();
    await wait();
    for (let i = 0; i < 4; i++) {
      t.sources.latest.fail();
      await wait(1000);
    }
    // Delays: 50-100, 100-200, 200-400, 400-800 ms: four more sources within 4 s, none early.
    expect(t.sources.opened).toHaveLength(5);
    t.sources.latest.accept();
    t.sources.latest.fail();
    await wait(100);
    expect(t.sources.opened).toHaveLength(6);
    t.client.stop();
  });

  it('when the server ends the stream at its lifetime, opens the next one at once without an error', async () => {
    const t = setup();
    t.client.start();
    await wait();
    t.sources.latest.accept();
    push(t.sources.latest, message(1));
    t.sources.latest.send('end', { reason: 'lifetime', resume: true });
    expect(t.sources.opened[0]?.closed).toBe(true);
    await wait(100);
    expect(t.sources.opened).toHaveLength(2);
    expect(t.sources.latest.query).toEqual({ ticket: 't2', lastEventId: '1.0' });
    expect(t.errors).toEqual([]);
    t.client.stop();
  });

  it('waits as long as the server asks when refused a ticket for a while', async () => {
    const t = setup({ tickets: (nth) => (nth === 1 ? apiError(503, 'service_unavailable', 'busy', { 'retry-after': '3' }) : json(200, { ticket: 't', expiresInSeconds: 30 })) });
    t.client.start();
    await wait();
    expect(t.errors.map((e) => [e.error.code, e.fatal])).toEqual([['service_unavailable', false]]);
    await wait(2900);
    expect(t.sources.opened).toHaveLength(0);
    await wait(100);
    expect(t.sources.opened).toHaveLength(1);
    t.client.stop();
  });
});

describe('ending', () => {
  it('stops for good when the session has ended (the server says so, or refuses a ticket)', async () => {
    const t = setup({ tickets: (nth) => (nth === 1 ? json(200, { ticket: 't1', expiresInSeconds: 30 }) : apiError(401, 'unauthenticated', 'log in')) });
    t.client.start();
    await wait();
    t.sources.latest.accept();
    t.sources.latest.send('end', { reason: 'session_ended', resume: false });
    await wait(60_000);
    expect(t.errors.map((e) => [e.error.code, e.fatal])).toEqual([['unauthenticated', true]]);
    expect(t.client.state).toBe('offline');
    expect(t.sources.opened).toHaveLength(1);

    const u = setup({ tickets: () => apiError(401, 'unauthenticated', 'log in') });
    u.client.start();
    await wait(60_000);
    expect(u.errors.map((e) => [e.error.code, e.fatal])).toEqual([['unauthenticated', true]]);
    expect(u.server.seen('POST', TICKETS)).toHaveLength(1);
  });

  it('stops when the membership ended', async () => {
    const t = setup();
    t.client.start();
    await wait();
    t.sources.latest.accept();
    t.sources.latest.send('end', { reason: 'membership_ended', resume: false });
    await wait(60_000);
    expect(t.errors.map((e) => [e.error.code, e.fatal])).toEqual([['not_a_member', true]]);
    expect(t.sources.opened).toHaveLength(1);
  });

  it('closes the source on stop and opens no other', async () => {
    const t = setup();
    t.client.start();
    await wait();
    t.sources.latest.accept();
    t.client.stop();
    expect(t.sources.latest.closed).toBe(true);
    expect(t.states.at(-1)).toBe('offline');
    await wait(60_000);
    expect(t.sources.opened).toHaveLength(1);
  });
});

describe('reset', () => {
  it('forgets the room, tells the application, and takes the room again from the beginning', async () => {
    const t = setup({ lastEventId: '90.4' });
    t.client.start();
    await wait();
    // A database restored from a backup: the room now ends before 90.4.
    const s = t.sources.latest;
    s.send('reset', { reason: 'beyond_room', rooms: [ROOM] }, '0.0');
    s.accept();
    push(s, joined(1));
    push(s, message(1, 1));
    expect(t.resets).toEqual([[ROOM]]);
    expect(t.ids()).toEqual(['j-1', 'm-6f1c-1']);
    s.fail();
    await wait(100);
    expect(t.sources.latest.query.lastEventId).toBe('1.1');
    t.client.stop();
  });

  it('resumes from the reset point if the stream drops before any event', async () => {
    const t = setup({ lastEventId: '90.4' });
    t.client.start();
    await wait();
    t.sources.latest.send('reset', { reason: 'beyond_room', rooms: [ROOM] }, '0.0');
    t.sources.latest.fail();
    await wait(100);
    expect(t.sources.latest.query.lastEventId).toBe('0.0');
    t.client.stop();
  });
});

describe('what is not a room event', () => {
  it('reports a malformed event and an unnamed one without stopping', async () => {
    const t = setup();
    t.client.start();
    await wait();
    t.sources.latest.accept();
    t.sources.latest.send('message.created', { nope: true }, '1.0');
    t.sources.latest.send('message', 'hello');
    push(t.sources.latest, message(1));
    expect(t.errors.map((e) => [e.error.code, e.fatal])).toEqual([
      ['bad_frame', false],
      ['bad_frame', false],
    ]);
    expect(t.ids()).toEqual(['m-6f1c-1']);
    t.client.stop();
  });
});
