import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, instructorQueueName, queueDestination, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
import { chat, makeRoom, startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { brokerDenials, connectStomp, subscribeWithReceipt, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

let h: Harness;
const open: StompSession[] = [];

async function tokenFor(user: TestUser): Promise<{ login: string; passcode: string }> {
  const res = await user.api.post('/api/broker-token');
  expect(res.status).toBe(200);
  return res.body;
}

async function stompAs(user: TestUser): Promise<StompSession> {
  const t = await tokenFor(user);
  const s = await connectStomp(webStompUrl(h.config), t.login, t.passcode);
  open.push(s);
  return s;
}

/**
 * Runs `act` and expects the broker to refuse it: broker-auth is asked and says deny, and
 * RabbitMQ ends the STOMP connection (it logs the ERROR frame but closes the WebSocket with
 * "STOMP died" at once, so the frame itself may not reach the client).
 */
async function expectRefused(s: StompSession, act: () => void): Promise<void> {
  const before = await brokerDenials(h.config);
  act();
  const closed = await s.closed;
  expect(s.errors.length > 0 || /STOMP died/.test(closed.reason)).toBe(true);
  expect(await brokerDenials(h.config)).toBeGreaterThan(before);
}

const expectSubscribeRefused = (s: StompSession, destination: string): Promise<void> =>
  expectRefused(s, () => s.client.subscribe(destination, () => undefined));

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.all(open.map((s) => s.disconnect()));
  await h.close();
});

describe('broker authorization', () => {
  it("refuses a learner's subscription to another room's key", async () => {
    const mine = await makeRoom(h, 1);
    const other = await makeRoom(h, 0);
    const s = await stompAs(mine.learners[0]!);
    await expectSubscribeRefused(s, exchangeDestination(roomAllKey(other.id)));
  });

  it("refuses a learner's subscription to another member's direct key", async () => {
    const room = await makeRoom(h, 2);
    const s = await stompAs(room.learners[0]!);
    await expectSubscribeRefused(s, exchangeDestination(roomUserKey(room.id, room.learners[1]!.id)));
  });

  it('refuses wildcard subscriptions that would span rooms', async () => {
    const room = await makeRoom(h, 1);
    const s = await stompAs(room.learners[0]!);
    await expectSubscribeRefused(s, exchangeDestination('room.*.all'));
  });

  it("refuses a learner consuming the instructor's queue", async () => {
    const room = await makeRoom(h, 1);
    const s = await stompAs(room.learners[0]!);
    await expectSubscribeRefused(s, queueDestination(instructorQueueName(room.id, room.instructor.id)));
  });

  it('refuses a SEND to amq.topic from a browser user, and nothing reaches the room', async () => {
    const room = await makeRoom(h, 2);
    const listener = await stompAs(room.learners[1]!);
    const heard: RoomMessage[] = [];
    await subscribeWithReceipt(listener, exchangeDestination(roomAllKey(room.id)), (m) => heard.push(JSON.parse(m.body) as RoomMessage));

    const sender = await stompAs(room.instructor);
    await expectRefused(sender, () =>
      sender.client.publish({ destination: exchangeDestination(roomAllKey(room.id)), body: JSON.stringify({ forged: true }) }),
    );

    // A real message sent after the forged one arrives alone.
    const real = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('real'));
    await waitFor(() => heard.length >= 1, 'the real message');
    expect(heard.map((m) => m.id)).toEqual([real.body.id]);
  });

  it('refuses a publish to the default exchange (a /queue/ destination)', async () => {
    const room = await makeRoom(h, 1);
    const s = await stompAs(room.learners[0]!);
    await expectRefused(s, () => s.client.publish({ destination: `/queue/${instructorQueueName(room.id, room.instructor.id)}`, body: 'x' }));
  });
});

describe('broker login', () => {
  it('accepts a fresh token', async () => {
    const room = await makeRoom(h, 1);
    await expect(stompAs(room.learners[0]!)).resolves.toBeDefined();
  });

  it('refuses a wrong token', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    await expect(connectStomp(webStompUrl(h.config), learner.id, 'not-a-real-token-aaaaaaaaaaaaaaaaaaaa')).rejects.toThrow();
  });

  it("refuses another user's token", async () => {
    const room = await makeRoom(h, 2);
    const t = await tokenFor(room.learners[1]!);
    await expect(connectStomp(webStompUrl(h.config), room.learners[0]!.id, t.passcode)).rejects.toThrow();
  });

  it('refuses an expired token', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const issued = await h.server.services.sessions.issueBrokerToken(learner.token, learner.id, 1);
    await waitFor(async () => !(await h.server.services.sessions.checkBrokerToken(learner.id, issued.passcode)), 'Redis to expire the 1-second token', 5000);
    await expect(connectStomp(webStompUrl(h.config), learner.id, issued.passcode)).rejects.toThrow();
  });

  it('refuses a token after logout, even one that connected before', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const t = await tokenFor(learner);
    const first = await connectStomp(webStompUrl(h.config), t.login, t.passcode);
    await first.disconnect();
    expect((await learner.api.post('/api/auth/logout')).status).toBe(204);
    await expect(connectStomp(webStompUrl(h.config), t.login, t.passcode)).rejects.toThrow();
    expect((await learner.api.post('/api/broker-token')).status).toBe(401);
  });
});
