import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../runtime/config';
import { exchangeDestination, instructorQueueName, roomAllKey } from '../../shared/protocol/routing';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/metrics';
import { managementUrls } from '../src/broker/management-api';
import { BrokerAdmin } from '../src/revocation/broker-admin';
import { BROKER_AUTHZ_CACHE_MS, Revocations } from '../src/revocation/revocations';
import { ApiClient } from '../../testkit/api-client';
import { PASSWORD, chat, makeRoom, makeUser, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { brokerDenials, connectStomp, subscribeWithReceipt, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

let h: Harness;
const open: StompSession[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.all(open.map((s) => s.disconnect()));
  await h.close();
});

/** Connects as the user to Web-STOMP node `node` with a fresh broker token. */
async function connectAs(user: TestUser, node = 0): Promise<StompSession> {
  const token = await user.api.post('/api/broker-token');
  expect(token.status).toBe(200);
  const session = await connectStomp(webStompUrl(h.config, node), token.body.login, token.body.passcode);
  open.push(session);
  return session;
}

/** Subscribes to the room's broadcast key and records what arrives. */
async function listen(session: StompSession, room: TestRoom): Promise<string[]> {
  const got: string[] = [];
  await subscribeWithReceipt(session, exchangeDestination(roomAllKey(room.id)), (m) => got.push(m.body));
  return got;
}

/** Milliseconds until the socket closes; fails after `limitMs`. */
async function closesWithin(session: StompSession, limitMs: number): Promise<number> {
  const started = Date.now();
  let closed = false;
  void session.closed.then(() => (closed = true));
  await waitFor(() => closed, `the broker connection to close within ${limitMs} ms`, limitMs);
  return Date.now() - started;
}

/**
 * Whether a SUBSCRIBE to the room's broadcast key is refused: broker-auth says deny, no RECEIPT
 * comes (the subscription was never bound), and RabbitMQ ends the connection (its ERROR frame
 * may not reach the client before the close, see broker-auth.test.ts).
 */
async function subscribeRefused(session: StompSession, room: TestRoom): Promise<boolean> {
  const denials = await brokerDenials(h.config);
  let bound = false;
  const receipt = `r-${randomBytes(4).toString('hex')}`;
  session.client.watchForReceipt(receipt, () => (bound = true));
  session.client.subscribe(exchangeDestination(roomAllKey(room.id)), () => undefined, { receipt });
  await closesWithin(session, 5000);
  return !bound && (await brokerDenials(h.config)) > denials;
}

// Closing is asynchronous but prompt: the first close is requested before the API answers.
const PROMPTLY_MS = 3000;
// A connection made while the broker's authorization cache still held an "allow" is closed by
// the second pass, once the cache has forgotten it.
const AFTER_CACHE_MS = BROKER_AUTHZ_CACHE_MS + 3000;

describe('revocation of live broker connections', () => {
  it('uses the authorization cache TTL the broker is configured with', async () => {
    const template = await readFile(path.join(repoRoot, 'rabbitmq', 'rabbitmq.conf.template'), 'utf8');
    expect(Number(/^auth_cache\.cache_ttl = (\d+)$/m.exec(template)?.[1])).toBe(BROKER_AUTHZ_CACHE_MS);
  });

  it("runs as a broker user allowed to close other users' connections", async () => {
    const admin = new BrokerAdmin(managementUrls(h.config), h.config.rabbitmq);
    // If this fails on a running cluster: rabbitmqctl set_user_tags <broker user> administrator (see rabbitmq/definitions.template.json).
    expect(await admin.canCloseConnections()).toBe(true);
  });

  it('closes the connections of a user who logs out, and its broker tokens stop working', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const token = (await learner.api.post('/api/broker-token')).body;
    const stomp = await connectStomp(webStompUrl(h.config, 0), token.login, token.passcode);
    const other = await connectAs(learner, 1);
    await listen(stomp, room);
    expect((await learner.api.post('/api/auth/logout')).status).toBe(204);
    await Promise.all([closesWithin(stomp, PROMPTLY_MS), closesWithin(other, PROMPTLY_MS)]);
    await expect(connectStomp(webStompUrl(h.config, 2), token.login, token.passcode)).rejects.toThrow();
  });

  it('closes the connections of a removed member, who then cannot subscribe to the room again', async () => {
    const room = await makeRoom(h, 2);
    const [removed, stays] = room.learners as [TestUser, TestUser];
    const stomp = await connectAs(removed, 0);
    const seen = await listen(stomp, room);
    const staying = await listen(await connectAs(stays, 1), room);

    const res = await room.instructor.api.request('DELETE', `/api/rooms/${room.id}/members/${removed.id}`);
    expect(res.status).toBe(204);
    await closesWithin(stomp, PROMPTLY_MS);

    // Its session is still good (it may be in other rooms), but this room is closed to it:
    // the API says so, and the broker refuses the subscription on a node that never cached an allow.
    expect((await removed.api.get(`/api/rooms/${room.id}`)).body.error.code).toBe('not_a_member');
    expect((await removed.api.get(`/api/rooms/${room.id}/subscriptions`)).status).toBe(403);
    expect(await subscribeRefused(await connectAs(removed, 2), room)).toBe(true);

    // On the node that did cache an allow, a subscription may slip through for the cache TTL;
    // the second pass then closes it, and from then on the broker refuses it there too.
    const quick = await connectAs(removed, 0);
    subscribeWithReceipt(quick, exchangeDestination(roomAllKey(room.id)), () => undefined).catch(() => undefined);
    await closesWithin(quick, AFTER_CACHE_MS);
    expect(await subscribeRefused(await connectAs(removed, 0), room)).toBe(true);

    // The invite code does not let it back in.
    const rejoin = await removed.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    expect([rejoin.status, rejoin.body.error.code]).toEqual([403, 'removed_from_room']);

    // Messages sent after the removal reach the members, not the removed learner.
    const before = seen.length;
    expect((await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('after removal'))).status).toBe(201);
    await waitFor(() => staying.some((b) => b.includes('after removal')), 'the staying member to get the message');
    expect(seen.length).toBe(before);
  });

  it('closes the connections of a member who leaves, and ends its presence', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const stomp = await connectAs(learner, 1);
    await listen(stomp, room);
    expect((await learner.api.post(`/api/rooms/${room.id}/presence`)).status).toBe(204);

    expect((await learner.api.post(`/api/rooms/${room.id}/leave`)).status).toBe(204);
    await closesWithin(stomp, PROMPTLY_MS);
    expect(await h.server.services.mirror.role(room.id, learner.id)).toBeNull();
    expect(await h.server.services.presence.online(room.id)).not.toContain(learner.id);
    const again = await learner.api.post(`/api/rooms/${room.id}/leave`);
    expect([again.status, again.body.error.code]).toEqual([403, 'not_a_member']);
    // Leaving is no removal: the invite code lets it back in.
    expect((await learner.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
  });

  it("refuses the room's creator leaving it, which would leave the room without its instructor", async () => {
    const room = await makeRoom(h, 0);
    const res = await room.instructor.api.post(`/api/rooms/${room.id}/leave`);
    expect([res.status, res.body.error.code]).toEqual([403, 'creator_cannot_leave']);
    expect(await h.server.services.mirror.role(room.id, room.instructor.id)).toBe('instructor');
  });

  it('on a password change, ends every session and closes every connection, and answers with a fresh session', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const secondDevice = await h.api.post('/api/auth/login', { username: learner.username, password: PASSWORD });
    const stomp = await connectAs(learner, 0);
    const otherDevice = await connectAs({ ...learner, api: learner.api.withToken(secondDevice.body.token) }, 2);
    await listen(stomp, room);

    const res = await learner.api.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: 'a-brand-new-password' });
    expect(res.status).toBe(200);
    await Promise.all([closesWithin(stomp, PROMPTLY_MS), closesWithin(otherDevice, PROMPTLY_MS)]);

    expect((await learner.api.get('/api/me')).status).toBe(401);
    expect((await learner.api.withToken(secondDevice.body.token).get('/api/me')).status).toBe(401);
    const fresh = learner.api.withToken(res.body.token);
    expect((await fresh.get('/api/me')).status).toBe(200);
    const reconnected = await connectAs({ ...learner, api: fresh }, 1);
    await listen(reconnected, room);
    await reconnected.disconnect();
    expect((await h.api.post('/api/auth/login', { username: learner.username, password: PASSWORD })).status).toBe(401);
    expect((await h.api.post('/api/auth/login', { username: learner.username, password: 'a-brand-new-password' })).status).toBe(200);
  });

  it('refuses a wrong current password or a weak new one, and changes nothing', async () => {
    const user = await makeUser(h, 'learner');
    const wrong = await user.api.post('/api/auth/password', { currentPassword: 'not-it', newPassword: 'a-brand-new-password' });
    expect([wrong.status, wrong.body.error.code]).toEqual([401, 'invalid_credentials']);
    const short = await user.api.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: 'short' });
    expect([short.status, short.body.error.code]).toEqual([400, 'invalid_request']);
    const same = await user.api.post('/api/auth/password', { currentPassword: PASSWORD, newPassword: PASSWORD });
    expect([same.status, same.body.error.code]).toEqual([400, 'invalid_request']);
    expect((await user.api.get('/api/me')).status).toBe(200);
    expect((await new ApiClient(h.server.url).post('/api/auth/password', { currentPassword: PASSWORD, newPassword: 'x'.repeat(12) })).status).toBe(401);
  });

  it('refuses removal and leaving to a stranger (403 not_a_member) and to no session (401)', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const stranger = (await makeRoom(h, 0)).instructor;
    const remove = await stranger.api.request('DELETE', `/api/rooms/${room.id}/members/${learner.id}`);
    expect([remove.status, remove.body.error.code]).toEqual([403, 'not_a_member']);
    const leave = await stranger.api.post(`/api/rooms/${room.id}/leave`);
    expect([leave.status, leave.body.error.code]).toEqual([403, 'not_a_member']);
    const nobody = new ApiClient(h.server.url);
    expect((await nobody.request('DELETE', `/api/rooms/${room.id}/members/${learner.id}`)).status).toBe(401);
    expect((await nobody.post(`/api/rooms/${room.id}/leave`)).status).toBe(401);
    expect(await h.server.services.mirror.role(room.id, learner.id)).toBe('learner');
  });

  it('lets only instructors remove members, never themselves or the room creator', async () => {
    const room = await makeRoom(h, 2);
    const [a, b] = room.learners as [TestUser, TestUser];
    const path = (id: string): string => `/api/rooms/${room.id}/members/${id}`;
    const learnerTries = await a.api.request('DELETE', path(b.id));
    expect([learnerTries.status, learnerTries.body.error.code]).toEqual([403, 'forbidden']);
    const self = await room.instructor.api.request('DELETE', path(room.instructor.id));
    expect([self.status, self.body.error.code]).toEqual([403, 'cannot_remove_member']);

    const coInstructor = await makeUser(h, 'instructor');
    expect((await coInstructor.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const creator = await coInstructor.api.request('DELETE', path(room.instructor.id));
    expect([creator.status, creator.body.error.code]).toEqual([403, 'cannot_remove_member']);
    expect((await coInstructor.api.request('DELETE', path(b.id))).status).toBe(204);

    // The creator may remove a co-instructor; its instructor queue goes with it.
    expect((await room.instructor.api.request('DELETE', path(coInstructor.id))).status).toBe(204);
    const { user, password } = h.config.rabbitmq;
    const queue = await fetch(`${managementUrls(h.config)[0]}/api/queues/%2F/${encodeURIComponent(instructorQueueName(room.id, coInstructor.id))}`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    });
    expect(queue.status).toBe(404);
    for (const id of [b.id, coInstructor.id, '00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const gone = await room.instructor.api.request('DELETE', path(id));
      expect([gone.status, gone.body.error.code], id).toEqual([404, 'not_found']);
    }
    const outsider = await makeUser(h, 'instructor');
    const notMember = await outsider.api.request('DELETE', path(a.id));
    expect([notMember.status, notMember.body.error.code]).toEqual([403, 'not_a_member']);
  });

  it('retries a close that failed, from any app server, until the connection is closed', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const stomp = await connectAs(learner, 1);
    // Two "app servers" sharing a job queue of their own: the first cannot reach any management API.
    const queue = `revoke-test-${randomBytes(4).toString('hex')}`;
    const logger = createLogger({ logLevel: 'silent' }, 'test');
    const brokenMetrics = createMetrics(async () => 0);
    const broken = new Revocations(h.server.services.pool, new BrokerAdmin(['http://127.0.0.1:1'], h.config.rabbitmq), brokenMetrics, logger, queue);
    const healthy = new Revocations(h.server.services.pool, new BrokerAdmin(managementUrls(h.config), h.config.rabbitmq), createMetrics(async () => 0), logger, queue);
    try {
      broken.start();
      await broken.request(learner.id, 'logout');
      await waitFor(async () => (await brokenMetrics.revocationFailures.get()).values[0]?.value === 1, 'the first close to fail');
      await broken.stop();
      expect(await healthy.pending()).toBe(2);
      healthy.start();
      await closesWithin(stomp, 5000);
      // Both jobs (now and after the cache TTL) end done, none lost or left behind.
      await waitFor(async () => (await healthy.pending()) === 0, 'both jobs to finish', AFTER_CACHE_MS + 5000);
    } finally {
      await Promise.all([broken.stop(), healthy.stop()]);
    }
  });
});
