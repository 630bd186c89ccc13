/**
 * The room client (RoomClient) end to end in one process: the real client, its real
 * RoomcastApi and the real @stomp/stompjs, against a scripted app server (fake-room-server.ts,
 * at the fetch level) and a scripted Web-STOMP node (fake-stomp-server.ts, at the WebSocket
 * level), on fake time. Each test makes the timing that matters happen on purpose: a message
 * published late, a socket cut, a page that fails, a receipt that is slow.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { instructorQueueName, roomAllKey, roomUserKey, roomWildcardKey, routingKeyOf } from '../../shared/protocol/routing';
import { RoomClient, type ConnectionState, type RoomClientOptions } from '../src/client/index';
import { FakeRoomServer, OTHER_ID, ROOM_ID, USER_ID, type RouteAnswer } from './fake-room-server';
import { FakeStompServer } from './fake-stomp-server';

const URLS = ['wss://node-1.test/ws', 'wss://node-2.test/ws', 'wss://node-3.test/ws'];
const SILENCE_MS = 30_000;
/** Reconnects after 0.5-1 s, doubling up to 8 s. */
const RECONNECT = { initialMs: 1_000, maxMs: 8_000 };

const notAMember: RouteAnswer = { status: 403, code: 'not_a_member', message: 'you are not a member of this room' };
const serverError: RouteAnswer = { status: 500, code: 'internal', message: 'internal error' };

/** Lets every frame, answer and promise already due arrive, without moving the clock. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await vi.advanceTimersByTimeAsync(0);
  }
  throw new Error(`never happened: ${what}`);
}

const advance = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

/** Moves the clock in 100 ms steps until the condition holds, at most `ms`. */
async function within(ms: number, condition: () => boolean, what: string): Promise<void> {
  for (let t = 0; t <= ms; t += 100) {
    if (condition()) return;
    await advance(100);
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

function setup(options: { role?: 'learner' | 'instructor'; client?: Partial<RoomClientOptions> } = {}) {
  const rest = new FakeRoomServer();
  rest.role = options.role ?? 'learner';
  const broker = new FakeStompServer();
  const queue = instructorQueueName(ROOM_ID, USER_ID);
  if (rest.role === 'instructor') broker.declareQueue(queue, roomWildcardKey(ROOM_ID));
  const client = new RoomClient({
    api: rest.api,
    roomId: ROOM_ID,
    stompUrls: URLS,
    webSocketFactory: broker.factory,
    silenceResyncMs: SILENCE_MS,
    reconnect: RECONNECT,
    ...options.client,
  });
  const states: ConnectionState[] = [];
  const shown: RoomMessage[] = [];
  const placements: (number | null)[] = [];
  const errors: { code: string; fatal: boolean }[] = [];
  client.on('state', (s) => states.push(s));
  client.on('message', (m, { before }) => {
    shown.push(m);
    placements.push(before?.seq ?? null);
  });
  client.on('error', (e, fatal) => errors.push({ code: e.code, fatal }));
  /** Publishes a committed message to the broker, as the app server (or its outbox relay) does. */
  const publish = (...messages: RoomMessage[]): void => {
    for (const m of messages) broker.publish(routingKeyOf(m), JSON.stringify(m));
  };
  const seqs = (): number[] => client.messages.map((m) => m.seq);
  const live = (): Promise<void> => until(() => client.state === 'live', 'the client is live');
  /** Resolves once the client has made `n` resync requests in all. */
  const resyncs = (n: number): Promise<void> => until(() => rest.countOf('resync') >= n, `${n} resync requests`);
  return { rest, broker, client, states, shown, placements, errors, publish, seqs, live, resyncs, queue };
}

type Harness = ReturnType<typeof setup>;

/** Cuts the live socket and waits for the client to be live again on a new one (backoff included). */
async function cutAndReconnect(h: Harness): Promise<void> {
  const before = h.broker.sockets.length;
  h.broker.latest.cut();
  await until(() => h.client.state !== 'live', 'the client notices the cut');
  await advance(RECONNECT.maxMs);
  await until(() => h.broker.sockets.length > before && h.client.state === 'live', 'the client is live again on a new socket');
}

let clients: RoomClient[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  clients = [];
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  vi.useRealTimers();
});

/** Starts the client; `afterEach` stops it. */
function start(h: Harness): void {
  clients.push(h.client);
  h.client.start();
}

describe('connecting', () => {
  it('subscribes to every destination, waits for all the receipts, then resyncs and goes live', async () => {
    const h = setup();
    h.rest.commit({ text: 'before 1' });
    h.rest.commit({ text: 'before 2' });
    h.broker.answerReceipts = false;
    start(h);
    await until(() => h.broker.heldReceipts.length === 2, 'both SUBSCRIBEs reached the broker');
    const subscribes = h.broker.sent('SUBSCRIBE');
    expect(subscribes.map((f) => f.headers.destination)).toEqual([
      `/exchange/amq.topic/${roomAllKey(ROOM_ID)}`,
      `/exchange/amq.topic/${roomUserKey(ROOM_ID, USER_ID)}`,
    ]);
    expect(subscribes.every((f) => f.headers.receipt)).toBe(true);
    // The broker binds asynchronously: no resync may start before it confirmed every subscription.
    await advance(5_000);
    expect(h.client.state).toBe('connecting');
    expect(h.rest.countOf('resync')).toBe(0);
    h.broker.releaseReceipts();
    await h.live();
    expect(h.states).toEqual(['connecting', 'resyncing', 'live']);
    expect(h.rest.resyncQueries()).toEqual([{ after: 0, personalAfter: 0, limit: 200 }]);
    expect(h.seqs()).toEqual([1, 2]);
  });

  it('connects with a fresh broker token each time', async () => {
    const h = setup();
    start(h);
    await h.live();
    await cutAndReconnect(h);
    const passcodes = h.broker.sent('CONNECT').map((f) => f.headers.passcode);
    expect(passcodes).toEqual(['passcode-1', 'passcode-2']);
    expect(h.broker.sent('CONNECT').every((f) => f.headers.login === USER_ID)).toBe(true);
  });
});

describe('live messages', () => {
  it('holds what arrives during a resync and merges it after, in seq order, each once', async () => {
    const h = setup();
    const m1 = h.rest.commit();
    const m2 = h.rest.commit();
    h.rest.resyncLatencyMs = 1_000;
    start(h);
    await h.resyncs(1);
    // The resync read the room at seq 2; meanwhile 3 and 4 are committed and arrive live out of order,
    // with a copy of 2 (a relay's second publish).
    const m3 = h.rest.commit();
    const m4 = h.rest.commit();
    h.publish(m4, m2, m3);
    await advance(0);
    expect(h.shown).toEqual([]);
    await advance(1_000);
    await h.live();
    expect(h.shown.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(h.placements).toEqual([null, null, null, null]);
    expect(h.seqs()).toEqual([1, 2, 3, 4]);
    expect(h.client.messages.map((m) => m.id)).toEqual([m1.id, m2.id, m3.id, m4.id]);
  });

  it('shows a message once whatever the number of copies, live or from a resync', async () => {
    const h = setup();
    start(h);
    await h.live();
    const m1 = h.rest.commit();
    h.publish(m1, m1);
    await until(() => h.shown.length === 1, 'the message is shown');
    h.publish(m1);
    await cutAndReconnect(h); // the resync returns it once more
    h.publish(m1);
    await advance(0);
    expect(h.shown.map((m) => m.id)).toEqual([m1.id]);
    expect(h.seqs()).toEqual([1]);
  });

  it('puts a message that arrives late in its seq place and says before which one', async () => {
    const h = setup();
    start(h);
    await h.live();
    const [m1, m2, m3] = [h.rest.commit(), h.rest.commit(), h.rest.commit()];
    h.publish(m1, m3);
    await until(() => h.shown.length === 2, 'two messages shown');
    h.publish(m2);
    await until(() => h.shown.length === 3, 'the late one shown');
    expect(h.seqs()).toEqual([1, 2, 3]);
    expect(h.placements).toEqual([null, null, 3]);
  });

  it('drops a frame that is not a message of this room and reports it', async () => {
    const h = setup();
    start(h);
    await h.live();
    h.broker.publish(roomAllKey(ROOM_ID), JSON.stringify({ ...h.rest.commit(), roomId: 'another-room' }));
    h.broker.publish(roomAllKey(ROOM_ID), 'not json');
    await until(() => h.errors.length === 2, 'two errors');
    expect(h.errors).toEqual([
      { code: 'bad_frame', fatal: false },
      { code: 'bad_frame', fatal: false },
    ]);
    expect(h.shown).toEqual([]);
    expect(h.client.state).toBe('live');
  });
});

describe('where a resync starts', () => {
  it('after a cut, resyncs from the point it proved, so a message published late is never skipped', async () => {
    const h = setup();
    h.rest.commit();
    start(h);
    await h.live();
    // Broadcasts 2, 3 and 4 are committed; 2 is not published yet (its app server died before publishing).
    const [m2, m3, m4] = [h.rest.commit(), h.rest.commit(), h.rest.commit()];
    h.publish(m3, m4);
    await until(() => h.shown.length === 3, 'seqs 1, 3 and 4 shown');
    expect(h.seqs()).toEqual([1, 3, 4]);
    await cutAndReconnect(h);
    // The newest held is 4, but only 1 is proven: the resync starts there and brings 2.
    expect(h.rest.resyncQueries()[1]).toMatchObject({ after: 1 });
    expect(h.seqs()).toEqual([1, 2, 3, 4]);
    expect(h.shown.at(-1)?.id).toBe(m2.id);
    // That resync proved everything up to the room's head (4): the next starts there.
    await cutAndReconnect(h);
    expect(h.rest.resyncQueries()[2]).toMatchObject({ after: 4 });
  });

  it('after a cut, a client whose live stream had no hole resyncs from its newest message', async () => {
    const h = setup();
    start(h);
    await h.live();
    const ms = [h.rest.commit(), h.rest.commit(), h.rest.commit()];
    h.publish(...ms);
    await until(() => h.shown.length === 3, 'three shown');
    await cutAndReconnect(h);
    expect(h.rest.resyncQueries()[1]).toMatchObject({ after: 3 });
  });

  it("moves a learner's personal cursor only with a resync's through, never with what arrives live", async () => {
    const h = setup();
    start(h);
    await h.live();
    // Its own question sent from another tab: stored, never pushed to this learner.
    const question = h.rest.commit({ senderId: USER_ID, audience: 'instructors', kind: 'question' });
    const everyone = h.rest.commit();
    // A private reply to it: pushed to the learner's own key.
    const reply = h.rest.commit({ audience: 'member', recipientId: USER_ID, kind: 'answer' });
    h.publish(question, everyone, reply);
    await until(() => h.shown.length === 2, 'the broadcast and the reply shown');
    expect(h.seqs()).toEqual([2, 3]);
    await cutAndReconnect(h);
    // Room-wide: broadcast 1 (seq 2) is held; personal: only the first resync's through (0) is proven.
    expect(h.rest.resyncQueries()[1]).toEqual({ after: 2, personalAfter: 0, limit: 200 });
    expect(h.seqs()).toEqual([1, 2, 3]);
    expect(h.shown.at(-1)?.id).toBe(question.id);
    await cutAndReconnect(h);
    expect(h.rest.resyncQueries()[2]).toEqual({ after: 3, personalAfter: 3, limit: 200 });
  });

  it('walks every page of a long resync, and keeps the progress of the pages before one that fails', async () => {
    const h = setup({ client: { resyncPageSize: 2 } });
    for (let i = 0; i < 5; i++) h.rest.commit();
    h.rest.routeAnswer = (route, attempt) => (route === 'resync' && attempt === 2 ? serverError : 'answer');
    start(h);
    await h.resyncs(2);
    expect(h.client.state).toBe('resyncing');
    await advance(RECONNECT.initialMs);
    await h.live();
    expect(h.rest.resyncQueries()).toEqual([
      { after: 0, personalAfter: 0, limit: 2 },
      { after: 2, personalAfter: 2, limit: 2 }, // fails
      { after: 2, personalAfter: 2, limit: 2 }, // the retry starts after the first page, not from 0
      { after: 4, personalAfter: 4, limit: 2 },
    ]);
    expect(h.errors).toEqual([{ code: 'internal', fatal: false }]);
    expect(h.seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(h.shown).toHaveLength(5);
  });
});

describe("an instructor's queue", () => {
  it('follows the stream by seq, acks each queue message once it is in the log, and gets what was queued while away', async () => {
    const h = setup({ role: 'instructor', client: { prefetch: 2 } });
    // Sent while the console was closed: the durable queue keeps them (and the resync returns them too).
    const early = [h.rest.commit(), h.rest.commit({ audience: 'instructors', kind: 'question' }), h.rest.commit({ audience: 'member', recipientId: OTHER_ID })];
    h.publish(...early);
    start(h);
    await h.live();
    const [subscribe] = h.broker.sent('SUBSCRIBE');
    expect(subscribe?.headers).toMatchObject({ destination: `/amq/queue/${h.queue}`, ack: 'client-individual', 'prefetch-count': '2' });
    expect(h.broker.sent('SUBSCRIBE')).toHaveLength(1);
    const later = [h.rest.commit({ audience: 'instructors' }), h.rest.commit(), h.rest.commit({ audience: 'member', recipientId: OTHER_ID })];
    h.publish(...later);
    // With a prefetch of 2, the broker sends more only as the client acks.
    await until(() => h.broker.queueDepth(h.queue) === 0, 'the queue is drained');
    expect(h.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(h.shown).toHaveLength(6);
    expect(h.broker.sent('ACK')).toHaveLength(6);
    // A duplicate (redelivery, or the relay publishing again) is acked too, and not shown.
    h.publish(later[1] as RoomMessage);
    await until(() => h.broker.sent('ACK').length === 7, 'the copy is acked');
    expect(h.shown).toHaveLength(6);
    // Every seq counts for an instructor: the next resync starts after 6.
    await cutAndReconnect(h);
    expect(h.rest.resyncQueries().at(-1)).toMatchObject({ after: 6 });
  });

  it('acks a queue message that arrived during a resync only after merging it', async () => {
    const h = setup({ role: 'instructor' });
    h.rest.resyncLatencyMs = 1_000;
    start(h);
    await h.resyncs(1);
    h.publish(h.rest.commit({ audience: 'instructors' }));
    await advance(0);
    expect(h.broker.sent('ACK')).toHaveLength(0);
    expect(h.broker.queueDepth(h.queue)).toBe(1);
    await advance(1_000);
    await h.live();
    await until(() => h.broker.queueDepth(h.queue) === 0, 'acked');
    expect(h.seqs()).toEqual([1]);
  });
});

describe('an instructor queue across a cut', () => {
  it('gets back what was delivered but not acked when the socket died, and shows it once', async () => {
    const h = setup({ role: 'instructor' });
    start(h);
    await h.live();
    await cutAndReconnect(h);
    // The catch-up resync after this cut is slow; a question arrives meanwhile and is held, unacked.
    h.rest.resyncLatencyMs = 5_000;
    const socket = h.broker.latest;
    socket.cut();
    await within(RECONNECT.maxMs, () => h.client.state === 'resyncing' && h.broker.latest !== socket, 'resyncing on a new socket');
    const question = h.rest.commit({ audience: 'instructors', kind: 'question' });
    h.publish(question);
    await advance(0);
    expect(h.broker.sent('ACK')).toHaveLength(0);
    // The socket dies before the resync answers: the broker puts the question back in the queue.
    h.broker.latest.cut();
    await advance(5_000 + RECONNECT.maxMs);
    h.rest.resyncLatencyMs = 0;
    await until(() => h.client.state === 'live' && h.broker.queueDepth(h.queue) === 0, 'live with the queue drained');
    expect(h.shown.map((m) => m.id)).toEqual([question.id]);
    expect(h.broker.sent('ACK').length).toBeGreaterThanOrEqual(1);
  });
});

describe('the browser going online', () => {
  it('ends a reconnect backoff at once', async () => {
    const listeners = new Map<string, () => void>();
    vi.stubGlobal('addEventListener', (type: string, listener: () => void) => listeners.set(type, listener));
    vi.stubGlobal('removeEventListener', (type: string) => listeners.delete(type));
    try {
      const h = setup();
      for (const url of URLS) h.broker.down.add(url);
      start(h);
      // Five failed rounds: the next backoff is 4-8 s.
      for (let i = 0; i < 20 && h.broker.sockets.length < 5; i++) await advance(1_000);
      await until(() => h.client.state === 'offline', 'waiting out a backoff');
      h.broker.down.clear();
      listeners.get('online')?.();
      await h.live();
      expect(h.broker.sockets).toHaveLength(6);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('timers', () => {
  it('resyncs when a hole in the stream stays open for silenceResyncMs, even while messages keep coming', async () => {
    const h = setup();
    start(h);
    await h.live();
    const [m1, m2] = [h.rest.commit(), h.rest.commit()];
    h.publish(m2); // m1 lost on the way
    await until(() => h.shown.length === 1, 'seq 2 shown');
    // Messages keep arriving, so the room is never silent.
    for (let t = 0; t < 2; t++) {
      await advance(10_000);
      h.publish(h.rest.commit());
    }
    await advance(SILENCE_MS - 20_000 - 1);
    expect(h.rest.countOf('resync')).toBe(1);
    await advance(1);
    await h.resyncs(2);
    expect(h.rest.resyncQueries()[1]).toMatchObject({ after: 0 });
    await h.live();
    expect(h.seqs()).toEqual([1, 2, 3, 4]);
    expect(h.shown.at(-1)?.id).toBe(m1.id);
  });

  it('resyncs after silenceResyncMs without any message, counted from the last one', async () => {
    const h = setup();
    start(h);
    await h.live();
    await advance(SILENCE_MS - 5_000);
    h.publish(h.rest.commit());
    await until(() => h.shown.length === 1, 'a message arrives');
    await advance(SILENCE_MS - 1);
    expect(h.rest.countOf('resync')).toBe(1);
    // A message committed but lost on the way: the silence resync finds it.
    h.rest.commit();
    await advance(1);
    await h.resyncs(2);
    await h.live();
    expect(h.states.slice(-2)).toEqual(['resyncing', 'live']);
    expect(h.seqs()).toEqual([1, 2]);
    // And again after another silence.
    await advance(SILENCE_MS);
    await h.resyncs(3);
  });
});

describe('state', () => {
  // A silence resync still in flight when the socket is cut finishes after the reconnect; it
  // must not declare the new connection live before that connection's own catch-up resync.
  it('stays resyncing until the catch-up resync of a reconnect has answered, even if a silence resync was in flight', async () => {
    const h = setup();
    start(h);
    await h.live();
    h.rest.resyncLatencyMs = 5_000;
    await advance(SILENCE_MS);
    await h.resyncs(2); // the silence resync, answering in 5 s
    await advance(1_000);
    h.broker.latest.cut();
    await advance(RECONNECT.maxMs / 2); // reconnected and subscribed; the catch-up waits behind the silence resync
    expect(h.broker.connected).toHaveLength(1);
    await h.resyncs(3); // the silence resync answered; the catch-up resync is in flight
    expect(h.rest.countOf('resync')).toBe(3);
    expect(h.client.state).toBe('resyncing');
  });
});

describe('after stop', () => {
  // A resync in flight at stop() must not put its answer in the log afterwards: a page that
  // switched rooms would show the old room's messages.
  it('reports nothing once stopped, not even the answer of a resync that was in flight', async () => {
    const h = setup();
    h.rest.commit();
    h.rest.resyncLatencyMs = 1_000;
    start(h);
    await h.resyncs(1);
    await h.client.stop();
    const shownAtStop = h.shown.length;
    await advance(5_000);
    expect(h.shown).toHaveLength(shownAtStop);
  });
});

describe('failures', () => {
  it('stops for good when the app server says it is not a member', async () => {
    const h = setup();
    h.rest.routeAnswer = (route) => (route === 'subscriptions' ? notAMember : 'answer');
    start(h);
    await until(() => h.errors.length > 0, 'an error');
    expect(h.errors).toEqual([{ code: 'not_a_member', fatal: true }]);
    await until(() => h.client.state === 'offline', 'offline');
    await advance(5 * 60_000);
    expect(h.rest.countOf('subscriptions')).toBe(1);
    expect(h.broker.sockets).toHaveLength(0);
  });

  it('stops and closes its connection when a resync says it is no longer a member', async () => {
    const h = setup();
    start(h);
    await h.live();
    h.rest.routeAnswer = (route) => (route === 'resync' ? notAMember : 'answer');
    await cutAndReconnect(h).catch(() => undefined);
    await until(() => h.errors.some((e) => e.fatal), 'a fatal error');
    expect(h.errors.filter((e) => e.fatal)).toEqual([{ code: 'not_a_member', fatal: true }]);
    await until(() => h.broker.connected.length === 0, 'the connection closed');
    expect(h.client.state).toBe('offline');
    const sockets = h.broker.sockets.length;
    await advance(5 * 60_000);
    expect(h.broker.sockets).toHaveLength(sockets);
  });

  it('tries the next URL after a broker failure, and the same one after an app-server failure', async () => {
    const h = setup();
    h.broker.down.add(URLS[0] as string);
    start(h);
    await advance(RECONNECT.maxMs);
    await h.live();
    expect(h.broker.sockets.map((s) => s.url)).toEqual([URLS[0], URLS[1]]);
    expect(h.errors).toEqual([{ code: 'broker_disconnected', fatal: false }]);
    // node-2 dies: the next round goes to node-3.
    await cutAndReconnect(h);
    expect(h.broker.latest.url).toBe(URLS[2]);
    // node-3 dies, and then the app server does not answer once: that says nothing about node-1.
    let appServerDown = true;
    h.rest.routeAnswer = (route) => (route === 'subscriptions' && appServerDown ? ((appServerDown = false), 'network') : 'answer');
    h.broker.down.delete(URLS[0] as string);
    const before = h.broker.sockets.length;
    h.broker.latest.cut();
    await advance(RECONNECT.maxMs);
    await until(() => h.errors.some((e) => e.code === 'network'), 'the subscriptions request fails');
    await advance(2 * RECONNECT.maxMs);
    await h.live();
    expect(h.broker.sockets.slice(before).map((s) => s.url)).toEqual([URLS[0]]);
  });

  it('connects with the spare token when the app server cannot hand out a fresh one', async () => {
    const h = setup();
    h.rest.routeAnswer = (route, attempt) => (route === 'broker-token' && attempt === 2 ? 'network' : 'answer');
    start(h);
    await h.live();
    await cutAndReconnect(h);
    expect(h.broker.sent('CONNECT').map((f) => f.headers.passcode)).toEqual(['passcode-1', 'passcode-1']);
  });

  it('reports a refused login as broker_refused and tries again with a fresh token', async () => {
    const h = setup();
    h.broker.connectAnswer = (frame) => (frame.headers.passcode === 'passcode-1' ? { error: 'access_refused' } : 'connected');
    start(h);
    await until(() => h.errors.length > 0, 'an error');
    expect(h.errors).toEqual([{ code: 'broker_refused', fatal: false }]);
    await advance(RECONNECT.maxMs);
    await h.live();
    expect(h.broker.sent('CONNECT').map((f) => [f.headers.passcode])).toEqual([['passcode-1'], ['passcode-2']]);
    expect(h.broker.sockets.map((s) => s.url)).toEqual([URLS[0], URLS[1]]);
  });

  it('drops a connection attempt that gets no CONNECTED within connectTimeoutMs', async () => {
    const h = setup({ client: { connectTimeoutMs: 5_000 } });
    h.broker.connectAnswer = (_frame, socket) => (socket.url === URLS[0] ? 'silent' : 'connected');
    start(h);
    await advance(4_000);
    expect(h.client.state).toBe('connecting');
    await advance(1_000 + RECONNECT.maxMs);
    await h.live();
    expect(h.broker.sockets.map((s) => s.url)).toEqual([URLS[0], URLS[1]]);
  });
});

describe('stopping, sending and presence', () => {
  it('stop({ leave }) leaves presence, disconnects politely and stays offline', async () => {
    const h = setup();
    start(h);
    await h.live();
    await h.client.stop({ leave: true });
    expect(h.client.state).toBe('offline');
    expect(h.rest.countOf('presence-delete')).toBe(1);
    expect(h.broker.sent('DISCONNECT')).toHaveLength(1);
    const requests = h.rest.requests.length;
    await advance(5 * 60_000);
    expect(h.rest.requests).toHaveLength(requests);
    expect(h.broker.sockets).toHaveLength(1);
  });

  it('shows its own sent message once, though its copy comes back through the broker', async () => {
    const h = setup();
    start(h);
    await h.live();
    const outgoing = h.client.send({ audience: 'everyone', kind: 'chat', body: { text: 'hi' } });
    await until(() => outgoing.status === 'sent', 'sent');
    const stored = h.rest.stored.at(-1) as RoomMessage;
    expect(stored.broadcastSeq).toBe(1);
    h.publish(stored);
    await advance(0);
    expect(h.shown.map((m) => m.id)).toEqual([stored.id]);
  });

  it('reads presence when it goes live, then shows what the server pushes, the newest snapshot only, without polling', async () => {
    const h = setup({ client: { presenceIntervalMs: 10_000 } });
    const presence: number[] = [];
    h.client.on('presence', (p) => presence.push(p.online));
    start(h);
    await until(() => presence.length === 1, 'the presence read at going live');
    const pushed = (online: number, at: number): void => h.broker.publish(roomAllKey(ROOM_ID), JSON.stringify({ presence: { roomId: ROOM_ID, at, online } }));
    pushed(4, 2000);
    await until(() => presence.length === 2, 'a pushed change');
    // An older snapshot (another server's, delivered late) is not shown; another room's neither.
    pushed(3, 1000);
    h.broker.publish(roomAllKey(ROOM_ID), JSON.stringify({ presence: { roomId: 'another-room', at: 3000, online: 9 } }));
    pushed(5, 3000);
    await until(() => presence.length === 3, 'the newest change');
    expect(presence).toEqual([1, 4, 5]);
    await advance(25_000);
    // Heartbeats go on (they keep this member online); reads do not (until the next time it goes live).
    expect(h.rest.countOf('presence-post')).toBe(3);
    expect(presence).toHaveLength(3);
  });
});
