/**
 * The STOMP gate through a real proxy, against the real Web-STOMP nodes and broker-auth: what
 * the room client does passes; every rule's refusal arrives as an ERROR frame naming it, then
 * a close; silent and failed logins are closed within the deadline, not after a minute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, instructorQueueName, queueDestination, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { subscribeWithReceipt, waitFor } from '../../testkit/stomp';
import { brokerAuthStatus } from '../../infra/broker-auth-service';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { openTls, startTestProxy, type TestProxy } from '../../testkit/test-proxy';
import { openRawStomp, type RawStomp } from '../../testkit/raw-stomp';

const CONNECT_TIMEOUT_MS = 1000;

let certs: TestCertificates;
let h: Harness;
let p: TestProxy;
let room: TestRoom;

beforeAll(async () => {
  certs = await makeTestCertificates();
  h = await startHarness();
  p = await startTestProxy(certs, { app: [h.server.url] }, { ROOMCAST_PROXY_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
  room = await makeRoom(h, 2);
});
afterAll(async () => {
  await p?.close();
  await h?.close();
  certs?.remove();
});

async function brokerToken(user: TestUser): Promise<{ login: string; passcode: string }> {
  const res = await p.api(user.token).post('/api/broker-token');
  expect(res.status).toBe(200);
  return res.body as { login: string; passcode: string };
}

const open = (): Promise<RawStomp> => openRawStomp(p.wssUrl, { ca: certs.ca });

/** A raw connection logged in as `user`. */
async function connected(user: TestUser): Promise<RawStomp> {
  const { login, passcode } = await brokerToken(user);
  const s = await open();
  s.send('CONNECT', { 'accept-version': '1.2', host: '/', login, passcode, 'heart-beat': '0,0' });
  await s.next('CONNECTED');
  return s;
}

async function refusedCount(reason: string): Promise<number> {
  const text = await (await fetch(`${p.proxy.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^roomcast_proxy_stomp_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** The connection ends with the proxy's ERROR naming `reason`, then a 1008 close, and the refusal is counted. */
async function expectRefused(s: RawStomp, reason: string, before: number): Promise<void> {
  const error = await s.next('ERROR');
  expect(error.headers.message).toMatch(new RegExp(`^${reason}: `));
  const { code } = await s.closed;
  expect(code).toBe(1008);
  expect(await refusedCount(reason)).toBe(before + 1);
}

describe('the STOMP gate', () => {
  it("lets a learner and an instructor subscribe to what the server lists for them, and deliver", async () => {
    const learner = room.learners[0]!;
    const got: Record<string, RoomMessage[]> = { learner: [], instructor: [] };
    for (const [who, user] of [['learner', learner], ['instructor', room.instructor]] as const) {
      const subs = await p.api(user.token).get(`/api/rooms/${room.id}/subscriptions`);
      expect(subs.status).toBe(200);
      const token = await brokerToken(user);
      const session = await p.stomp(token.login, token.passcode);
      const destinations: string[] = subs.body.topics;
      for (const d of destinations) await subscribeWithReceipt(session, d, (m) => got[who]!.push(JSON.parse(m.body) as RoomMessage));
      if (subs.body.instructorQueue) {
        await subscribeWithReceipt(session, subs.body.instructorQueue.destination, (m) => {
          got[who]!.push(JSON.parse(m.body) as RoomMessage);
          m.ack();
        }, { ack: 'client-individual', 'prefetch-count': '100' });
      }
    }
    const sent = await p.api(learner.token).post(`/api/rooms/${room.id}/messages`, chat('through the gate'));
    expect(sent.status).toBe(201);
    await waitFor(() => got.learner!.some((m) => m.id === sent.body.id) && got.instructor!.some((m) => m.id === sent.body.id), 'both to receive');
  });

  it('closes a socket that sends nothing within the CONNECT deadline', async () => {
    const before = await refusedCount('connect_timeout');
    const s = await open();
    const opened = Date.now();
    await expectRefused(s, 'connect_timeout', before);
    const { at } = await s.closed;
    expect(at - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(at - opened).toBeLessThan(CONNECT_TIMEOUT_MS + 1500);
  });

  it('waits for a slow broker once the CONNECT is sent, instead of cutting the client at the deadline', async () => {
    // broker-auth stopped: RabbitMQ cannot answer a fresh passcode until it resumes, as during a
    // reconnect storm. The client did its part in time; only the answer is late.
    const auth = (await brokerAuthStatus(h.config)).pid;
    expect(auth).not.toBeNull();
    const before = await refusedCount('connect_timeout');
    const { login, passcode } = await brokerToken(room.learners[1]!);
    const s = await open();
    process.kill(auth as number, 'SIGSTOP');
    try {
      s.send('CONNECT', { 'accept-version': '1.2', host: '/', login, passcode, 'heart-beat': '0,0' });
      // Once the proxy has cut a silent socket opened after this CONNECT at its deadline, every
      // deadline it set for `s`, from its opening or its CONNECT, has passed (the proxy's
      // timers of one length fire in the order they were set).
      await expectRefused(await open(), 'connect_timeout', before);
    } finally {
      process.kill(auth as number, 'SIGCONT');
    }
    await s.next('CONNECTED');
    // The silent socket's refusal, none for `s`.
    expect(await refusedCount('connect_timeout')).toBe(before + 1);
    s.ws.close();
  });

  it('closes a socket right after the broker refuses its CONNECT', async () => {
    const before = await refusedCount('login_failed');
    const s = await open();
    const sentAt = Date.now();
    s.send('CONNECT', { 'accept-version': '1.2', host: '/', login: room.learners[0]!.id, passcode: 'not-a-token' });
    const error = await s.next('ERROR');
    // The broker's own ERROR is relayed, then the proxy closes.
    expect(error.headers.message).not.toMatch(/^login_failed/);
    const { code, at } = await s.closed;
    expect(code).toBe(1008);
    expect(at - sentAt).toBeLessThan(CONNECT_TIMEOUT_MS + 1500);
    expect(await refusedCount('login_failed')).toBe(before + 1);
  });

  it('refuses anything but CONNECT first', async () => {
    const before = await refusedCount('connect_first');
    const s = await open();
    s.send('SUBSCRIBE', { id: '1', destination: exchangeDestination(roomAllKey(room.id)) });
    await expectRefused(s, 'connect_first', before);
  });

  it.each(['SEND', 'BEGIN', 'COMMIT', 'ABORT'])('refuses %s', async (command) => {
    const before = await refusedCount('command');
    const s = await connected(room.learners[0]!);
    s.send(command, { destination: exchangeDestination(roomAllKey(room.id)), transaction: 't1' }, 'hello');
    await expectRefused(s, 'command', before);
  });

  it.each([
    ['a /queue destination', () => '/queue/stomp-subscription-stolen'],
    ['a /topic destination', () => `/topic/${roomAllKey(room.id)}`],
    ['a temporary queue', () => '/temp-queue/mine'],
    ['a reply queue', () => '/reply-queue/mine'],
    ['another exchange', () => `/exchange/amq.direct/${roomAllKey(room.id)}`],
    ["another member's key", () => exchangeDestination(roomUserKey(room.id, room.learners[1]!.id))],
    ["the instructor's queue", () => queueDestination(instructorQueueName(room.id, room.instructor.id))],
    ['a wildcard', () => exchangeDestination(`room.${room.id}.#`)],
  ])('refuses a SUBSCRIBE to %s', async (_, destination) => {
    const before = await refusedCount('destination');
    const s = await connected(room.learners[0]!);
    s.send('SUBSCRIBE', { id: '1', destination: destination() });
    await expectRefused(s, 'destination', before);
  });

  it.each([
    ['x-queue-name', 'stomp-subscription-kept'],
    ['durable', 'true'],
    ['auto-delete', 'false'],
    ['exclusive', 'false'],
    ['persistent', 'true'],
    ['x-expires', '600000'],
  ])('refuses a SUBSCRIBE with the header %s', async (name, value) => {
    const before = await refusedCount('header');
    const s = await connected(room.learners[0]!);
    s.send('SUBSCRIBE', { id: '1', destination: exchangeDestination(roomAllKey(room.id)), [name]: value });
    await expectRefused(s, 'header', before);
  });

  it('refuses a second subscription to the same destination', async () => {
    const before = await refusedCount('duplicate_subscription');
    const s = await connected(room.learners[0]!);
    s.send('SUBSCRIBE', { id: '1', destination: exchangeDestination(roomAllKey(room.id)), receipt: 'r1' });
    await s.next('RECEIPT');
    s.send('SUBSCRIBE', { id: '2', destination: exchangeDestination(roomAllKey(room.id)) });
    await expectRefused(s, 'duplicate_subscription', before);
  });

  it('refuses the subscription over the per-connection limit (4)', async () => {
    const learner = room.learners[1]!;
    const others = await Promise.all([1, 2, 3, 4].map(() => makeRoom(h, 0)));
    for (const r of others) expect((await learner.api.post('/api/rooms/join', { inviteCode: r.inviteCode })).status).toBe(200);
    const destinations = [room, ...others].map((r) => exchangeDestination(roomAllKey(r.id)));
    const before = await refusedCount('too_many_subscriptions');
    const s = await connected(learner);
    destinations.slice(0, 4).forEach((d, i) => s.send('SUBSCRIBE', { id: `s${i}`, destination: d, receipt: `r${i}` }));
    await waitFor(() => s.frames.filter((f) => f.command === 'RECEIPT').length === 4, 'four receipts');
    s.send('SUBSCRIBE', { id: 's4', destination: destinations[4]! });
    await expectRefused(s, 'too_many_subscriptions', before);
  });

  it('refuses a frame over the size limit', async () => {
    const before = await refusedCount('frame_too_large');
    const s = await connected(room.learners[0]!);
    s.send('ACK', { id: 'x'.repeat(70 * 1024) });
    await expectRefused(s, 'frame_too_large', before);
  });
});

describe('a connection that says nothing', () => {
  it('is dropped when it has not sent a request within the CONNECT deadline of its TLS handshake', async () => {
    const socket = await openTls(p.proxy.ports.https, certs.ca);
    const opened = Date.now();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(Date.now() - opened).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(Date.now() - opened).toBeLessThan(CONNECT_TIMEOUT_MS + 1500);
  });

  it('leaves a logged-in WebSocket open past the deadline', async () => {
    const token = await brokerToken(room.learners[0]!);
    const session = await p.stomp(token.login, token.passcode);
    const closed = session.closed.then(() => 'closed');
    // Once the proxy has cut a silent socket opened after this one at its deadline, this one's
    // deadline has passed too (the proxy's timers of one length fire in the order they were
    // set); the refusal count shows the proxy cut that one only.
    const before = await refusedCount('connect_timeout');
    await expectRefused(await open(), 'connect_timeout', before);
    // Past the deadline, the WebSocket (heart-beats off) is still open, and still carries frames.
    const subscribed = subscribeWithReceipt(session, exchangeDestination(roomAllKey(room.id)), () => undefined).then(() => 'open');
    const outcome = await Promise.race([closed, subscribed]);
    expect(outcome).toBe('open');
  });
});
