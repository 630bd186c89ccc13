/**
 * Webhooks against a real receiver (testkit/webhook-receiver.ts: node:http on loopback, every
 * delivery checked with the `standardwebhooks` package) and a real app server, Postgres and Exim.
 * The test profile compresses the retry schedule to 300 ms, 300 ms, 300 ms (four attempts).
 */
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomEvent } from '../../shared/protocol/events';
import { chat, makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { readMailbox } from '../../testkit/mailbox';
import { waitFor } from '../../testkit/stomp';
import { testConfig } from '../../testkit/test-config';
import { WebhookReceiver, type Delivery } from '../../testkit/webhook-receiver';
import { WebhookSender } from '../src/webhooks/webhook-sender';
import type { WebhookAttempt, WebhookEndpoint } from '../src/webhooks';

let h: Harness;
let rx: WebhookReceiver;

beforeAll(async () => {
  rx = await WebhookReceiver.start();
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
  await rx?.close();
});

const hooks = (roomId: string): string => `/api/rooms/${roomId}/webhooks`;
const patch = (user: TestUser, path: string, body: unknown) => user.api.request('PATCH', path, JSON.stringify(body));
const del = (user: TestUser, path: string) => user.api.request('DELETE', path);

/** Registers an endpoint at a fresh path of the receiver, which then verifies with its secret. */
async function register(
  room: TestRoom,
  o: { eventTypes?: string[]; description?: string; by?: TestUser } = {},
): Promise<{ endpoint: WebhookEndpoint & { secret: string }; path: string }> {
  const path = `/${uniqueName('hook')}`;
  const res = await (o.by ?? room.instructor).api.post(hooks(room.id), {
    url: rx.url(path),
    eventTypes: o.eventTypes ?? ['message.created', 'member.joined', 'member.left', 'room.created'],
    description: o.description ?? 'test receiver',
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  rx.secret(path, res.body.endpoint.secret);
  return { endpoint: res.body.endpoint, path };
}

async function post(user: TestUser, roomId: string, text: string, extra: Record<string, unknown> = {}): Promise<{ id: string; seq: number }> {
  const res = await user.api.post(`/api/rooms/${roomId}/messages`, chat(text, extra));
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, seq: res.body.seq };
}

const endpointOf = async (room: TestRoom, id: string): Promise<WebhookEndpoint> => (await room.instructor.api.get(`${hooks(room.id)}/${id}`)).body.endpoint;
const attemptsOf = async (room: TestRoom, id: string): Promise<WebhookAttempt[]> => (await room.instructor.api.get(`${hooks(room.id)}/${id}/attempts`)).body.attempts;

/** Gives the user a verified address, as a completed address check does. */
async function withAddress(user: TestUser): Promise<string> {
  const email = `wh-${randomBytes(5).toString('hex')}@example.test`;
  await h.server.services.pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [user.id, email]);
  return email;
}

/** Ids of the deliveries to `path` that were answered 2xx, in order. */
const deliveredIds = (path: string): string[] => rx.to(path).filter((d) => d.status >= 200 && d.status < 300).map((d) => d.id);

describe('webhook endpoints', () => {
  it('lets an instructor register, list, get, update, pause, resume and delete one; the secret is shown once', async () => {
    const room = await makeRoom(h, 0);
    const { endpoint } = await register(room, { eventTypes: ['message.created', 'message.created'], description: 'grades' });
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(endpoint.secret.slice(6), 'base64')).toHaveLength(32);
    expect(endpoint).toMatchObject({ roomId: room.id, ownerId: room.instructor.id, eventTypes: ['message.created'], description: 'grades', enabled: true, disabledReason: null });

    const listed = await room.instructor.api.get(hooks(room.id));
    expect(listed.status).toBe(200);
    expect(listed.body.endpoints.map((e: WebhookEndpoint) => e.id)).toEqual([endpoint.id]);
    expect(JSON.stringify(listed.body)).not.toContain(endpoint.secret);
    expect(JSON.stringify(await endpointOf(room, endpoint.id))).not.toContain(endpoint.secret);

    const changed = await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { description: 'gradebook', eventTypes: ['member.joined', 'member.left'] });
    expect(changed.status).toBe(200);
    expect(changed.body.endpoint).toMatchObject({ description: 'gradebook', eventTypes: ['member.joined', 'member.left'] });

    const paused = await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: false });
    expect(paused.body.endpoint).toMatchObject({ enabled: false, disabledReason: 'paused' });
    const resumed = await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: true });
    expect(resumed.body.endpoint).toMatchObject({ enabled: true, disabledReason: null });

    expect((await del(room.instructor, `${hooks(room.id)}/${endpoint.id}`)).status).toBe(204);
    expect((await room.instructor.api.get(`${hooks(room.id)}/${endpoint.id}`)).status).toBe(404);
    expect((await room.instructor.api.get(hooks(room.id))).body.endpoints).toEqual([]);
  });

  it('answers 400 with the problem for a bad body, and 404 for an unknown endpoint', async () => {
    const room = await makeRoom(h, 0);
    const bad = await room.instructor.api.post(hooks(room.id), { url: rx.url('/x'), eventTypes: ['message.deleted'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect((await room.instructor.api.post(hooks(room.id), { url: rx.url('/x'), eventTypes: [] })).status).toBe(400);
    expect((await room.instructor.api.post(hooks(room.id), { url: 'not a url', eventTypes: ['message.created'] })).body.error.code).toBe('webhook_url_invalid');
    // What the URL parser would silently drop or trim is refused: the stored URL is the one called.
    for (const raw of [rx.url('/a\nb'), rx.url('/a\tb'), rx.url('/a b'), rx.url('/a\u0001b'), rx.url('/a\u007fb'), rx.url('/a\u00a0b')]) {
      const res = await room.instructor.api.post(hooks(room.id), { url: raw, eventTypes: ['message.created'] });
      expect(res.status, JSON.stringify(raw)).toBe(400);
      expect(res.body.error.code).toBe('webhook_url_invalid');
    }
    const normal = await room.instructor.api.post(hooks(room.id), { url: `HTTP://127.0.0.1:${rx.port}/a/../b?q=é`, eventTypes: ['message.created'] });
    expect(normal.status).toBe(201);
    expect(normal.body.endpoint.url).toBe(`http://127.0.0.1:${rx.port}/b?q=%C3%A9`);
    const repointed = await patch(room.instructor, `${hooks(room.id)}/${normal.body.endpoint.id}`, { url: `http://127.0.0.1:${rx.port}/./c` });
    expect(repointed.body.endpoint.url).toBe(`http://127.0.0.1:${rx.port}/c`);
    expect((await patch(room.instructor, `${hooks(room.id)}/${normal.body.endpoint.id}`, { url: rx.url('/c\nd') })).body.error.code).toBe('webhook_url_invalid');
    await del(room.instructor, `${hooks(room.id)}/${normal.body.endpoint.id}`);
    expect((await patch(room.instructor, `${hooks(room.id)}/${crypto.randomUUID()}`, { enabled: false })).status).toBe(404);
    expect((await room.instructor.api.get(`${hooks(room.id)}/nope`)).status).toBe(404);
  });

  it('belongs to the room’s instructors only: learners own none and see none (403), nor do outsiders', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    const { endpoint } = await register(room);
    const refused = await learner.api.post(hooks(room.id), { url: rx.url('/learner'), eventTypes: ['message.created'] });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect((await learner.api.get(hooks(room.id))).status).toBe(403);
    expect((await learner.api.get(`${hooks(room.id)}/${endpoint.id}/attempts`)).status).toBe(403);
    expect((await patch(learner, `${hooks(room.id)}/${endpoint.id}`, { enabled: false })).status).toBe(403);
    const outsider = await makeUser(h, 'instructor');
    expect((await outsider.api.get(hooks(room.id))).body.error.code).toBe('not_a_member');
    // A second instructor of the room manages the room's endpoints too.
    const colleague = await makeUser(h, 'instructor');
    expect((await colleague.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    expect((await colleague.api.get(hooks(room.id))).body.endpoints).toHaveLength(1);
  });
});

describe('webhook delivery', () => {
  it('sends each event as its RoomEvent JSON, signed per Standard Webhooks; a tampered body or an old timestamp fails the check', async () => {
    const room = await makeRoom(h, 0);
    const { endpoint, path } = await register(room);
    const sent = await post(room.instructor, room.id, 'signed and sealed: 안녕하세요');
    const learner = await makeUser(h, 'learner');
    expect((await learner.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    await rx.until(() => deliveredIds(path).length === 2, 'the message and the join');

    const [message, joined] = rx.to(path) as [Delivery, Delivery];
    for (const d of [message, joined]) {
      expect(d.verified, d.verifyError ?? '').toBe(true);
      expect(d.headers['content-type']).toBe('application/json');
      expect(d.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Math.abs(Number(d.timestamp) - Date.now() / 1000)).toBeLessThan(60);
      expect(d.id).toBe(d.event.id);
    }
    expect(message.id).toBe(sent.id);
    expect(joined.event).toMatchObject({ type: 'member.joined', data: { userId: learner.id, role: 'learner' } });
    // The very events the pull feed gives, byte for byte.
    const feed = await room.instructor.api.get(`/api/rooms/${room.id}/events?after=${endpoint.position}`);
    expect([message.body, joined.body]).toEqual(feed.body.events.map((e: RoomEvent) => JSON.stringify(e)));

    const wh = new Webhook(endpoint.secret);
    const headers = { 'webhook-id': message.id, 'webhook-timestamp': message.timestamp, 'webhook-signature': message.signature };
    expect(wh.verify(message.body, headers)).toEqual(message.event);
    expect(() => wh.verify(message.body.replace('sealed', 'peeled'), headers)).toThrow(/signature/i);
    expect(() => wh.verify(message.body, { ...headers, 'webhook-id': joined.id })).toThrow(/signature/i);
    // Signed correctly but ten minutes ago: a replayed capture.
    const old = new Date(Date.now() - 10 * 60_000);
    expect(() => wh.verify(message.body, { ...headers, 'webhook-timestamp': String(Math.floor(old.getTime() / 1000)), 'webhook-signature': wh.sign(message.id, old, message.body) })).toThrow(/too old/);
    expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(message.body, headers)).toThrow(/signature/i);
  });

  it('retries a failing delivery at the schedule with one id while later events of its room wait, and another room’s events flow', async () => {
    const [a, b] = [await makeRoom(h, 0), await makeRoom(h, 0)];
    const hookA = await register(a);
    const hookB = await register(b);
    rx.script(hookA.path, (_d, n) => ({ status: n <= 2 ? 500 : 204 }));

    const a1 = await post(a.instructor, a.id, 'a1');
    await rx.until(() => rx.to(hookA.path).length === 1, 'the first attempt at a1');
    // Committed while a1 is being retried.
    const a2 = await post(a.instructor, a.id, 'a2');
    const b1 = await post(b.instructor, b.id, 'b1');
    await rx.until(() => deliveredIds(hookA.path).length === 2, 'a1 and a2 delivered');

    const toA = rx.to(hookA.path);
    expect(toA.map((d) => [d.id, d.status])).toEqual([
      [a1.id, 500],
      [a1.id, 500],
      [a1.id, 204],
      [a2.id, 204],
    ]);
    expect(toA.every((d) => d.verified)).toBe(true);
    // The compressed schedule: 300 ms ± 20 % between attempts.
    expect(toA[1]!.at - toA[0]!.at).toBeGreaterThanOrEqual(240);
    expect(toA[2]!.at - toA[1]!.at).toBeGreaterThanOrEqual(240);
    // Room B did not wait for room A.
    const [toB] = rx.to(hookB.path);
    expect(toB?.id).toBe(b1.id);
    expect(toB!.at).toBeLessThan(toA[2]!.at);

    // The receiver has the last delivery a moment before the dispatcher records it.
    await waitFor(async () => (await attemptsOf(a, hookA.endpoint.id)).length === 4, 'four attempts recorded');
    const attempts = await attemptsOf(a, hookA.endpoint.id);
    expect(attempts.map((x) => [x.eventId, x.attempt, x.status, x.outcome])).toEqual([
      [a2.id, 1, 204, 'delivered'],
      [a1.id, 3, 204, 'delivered'],
      [a1.id, 2, 500, 'retry'],
      [a1.id, 1, 500, 'retry'],
    ]);
    for (const x of attempts) {
      expect(x.responseMs).toBeGreaterThanOrEqual(0);
      expect(x.error === null).toBe(x.outcome === 'delivered');
    }
    expect(await endpointOf(a, hookA.endpoint.id)).toMatchObject({ failingSince: null, pendingAttempts: 0, nextAttemptAt: null, position: `${a2.seq}.2` });
  });

  it('waits at least as long as a 429’s Retry-After asks', async () => {
    const room = await makeRoom(h, 0);
    const { path } = await register(room);
    rx.script(path, (_d, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : {}));
    await post(room.instructor, room.id, 'slow down');
    await rx.until(() => deliveredIds(path).length === 1, 'the retry after Retry-After');
    const [first, second] = rx.to(path) as [Delivery, Delivery];
    expect(second.at - first.at).toBeGreaterThanOrEqual(1900);
  });

  it('gives an event up once its schedule is used up, records it failed, and moves on to the next', async () => {
    const room = await makeRoom(h, 0);
    const { endpoint, path } = await register(room);
    const doomed = await post(room.instructor, room.id, 'doomed');
    rx.script(path, (d) => ({ status: d.id === doomed.id ? 503 : 204 }));
    const next = await post(room.instructor, room.id, 'next');
    await rx.until(() => deliveredIds(path).includes(next.id), 'the next event');
    expect(rx.to(path).map((d) => d.id)).toEqual([doomed.id, doomed.id, doomed.id, doomed.id, next.id]);
    await waitFor(async () => (await attemptsOf(room, endpoint.id)).length === 5, 'five attempts recorded');
    const attempts = await attemptsOf(room, endpoint.id);
    expect(attempts.map((x) => [x.eventId, x.attempt, x.outcome])).toEqual([
      [next.id, 1, 'delivered'],
      [doomed.id, 4, 'failed'],
      [doomed.id, 3, 'retry'],
      [doomed.id, 2, 'retry'],
      [doomed.id, 1, 'retry'],
    ]);
    expect(attempts[1]).toMatchObject({ status: 503, error: 'HTTP 503 Service Unavailable' });
  });

  it('disables an endpoint at a 410 and mails its owner; re-enabled, it delivers from its cursor what came meanwhile, in order, with the original ids', async () => {
    const room = await makeRoom(h, 0);
    const email = await withAddress(room.instructor);
    const { endpoint, path } = await register(room, { description: 'the LMS' });
    const witness = await register(room);
    rx.script(path, (_d, n) => ({ status: n === 1 ? 410 : 204 }));

    const g1 = await post(room.instructor, room.id, 'g1');
    await rx.until(() => rx.to(path).length === 1, 'the 410');
    await waitFor(async () => !(await endpointOf(room, endpoint.id)).enabled, 'the endpoint disabled');
    expect(await endpointOf(room, endpoint.id)).toMatchObject({ enabled: false, disabledReason: 'gone', position: endpoint.position });
    const g2 = await post(room.instructor, room.id, 'g2');
    const g3 = await post(room.instructor, room.id, 'g3');
    // The room's other endpoint has everything: had the disabled one been woken, it would have been by now.
    await rx.until(() => deliveredIds(witness.path).length === 3, 'the witness endpoint');
    expect(rx.to(path)).toHaveLength(1);

    await waitFor(() => readMailbox(h.config, email).length === 1, 'the owner’s mail', 20_000);
    const mail = await simpleParser(readMailbox(h.config, email)[0]!.raw);
    expect(mail.subject).toContain(rx.url(path));
    expect(mail.text).toContain('410 Gone');
    expect(mail.text).toContain('the LMS');
    expect((await attemptsOf(room, endpoint.id))[0]).toMatchObject({ eventId: g1.id, status: 410, outcome: 'gone' });

    expect((await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: true })).status).toBe(200);
    await rx.until(() => deliveredIds(path).length === 3, 'what came while it was off');
    expect(rx.to(path).map((d) => d.id)).toEqual([g1.id, g1.id, g2.id, g3.id]);
    expect(rx.to(path).every((d) => d.verified)).toBe(true);
  });

  it('disables an endpoint whose every attempt has failed for longer than the limit, and mails its owner', async () => {
    const room = await makeRoom(h, 0);
    const email = await withAddress(room.instructor);
    const { endpoint, path } = await register(room);
    rx.script(path, () => ({ status: 500 }));
    // Every attempt has failed for five days (as the default limit has it), as far as the next one can tell.
    await h.server.services.pool.query(`UPDATE webhook_endpoints SET failing_since = now() - interval '5 days 1 minute' WHERE id = $1`, [endpoint.id]);
    const f1 = await post(room.instructor, room.id, 'f1');
    await waitFor(async () => !(await endpointOf(room, endpoint.id)).enabled, 'the endpoint disabled');
    expect(await endpointOf(room, endpoint.id)).toMatchObject({ disabledReason: 'failing', pendingAttempts: 1 });
    expect(rx.to(path).map((d) => d.id)).toEqual([f1.id]);
    await waitFor(() => readMailbox(h.config, email).length === 1, 'the owner’s mail', 20_000);
    const mail = await simpleParser(readMailbox(h.config, email)[0]!.raw);
    expect(mail.text).toContain('Every delivery to it has failed since');
    expect(mail.text).toContain('HTTP 500');
  });

  it('replays from a seq or a position, with the original ids', async () => {
    const room = await makeRoom(h, 0);
    const { endpoint, path } = await register(room, { eventTypes: ['message.created'] });
    const sent = [await post(room.instructor, room.id, 'r1'), await post(room.instructor, room.id, 'r2'), await post(room.instructor, room.id, 'r3')];
    await rx.until(() => deliveredIds(path).length === 3, 'three messages');
    const first = rx.to(path).map((d) => d.body);

    const replay = await room.instructor.api.post(`${hooks(room.id)}/${endpoint.id}/replay`, { after: sent[0]!.seq });
    expect(replay.status).toBe(202);
    await rx.until(() => deliveredIds(path).length === 5, 'the replay after r1');
    expect(deliveredIds(path)).toEqual([...sent.map((s) => s.id), sent[1]!.id, sent[2]!.id]);
    // The same bodies: a receiver deduping by webhook-id sees only copies.
    expect(rx.to(path).slice(3).map((d) => d.body)).toEqual(first.slice(1));

    const r2 = rx.to(path)[1]!.event;
    expect((await room.instructor.api.post(`${hooks(room.id)}/${endpoint.id}/replay`, { after: r2.position })).status).toBe(202);
    await rx.until(() => deliveredIds(path).length === 6, 'the replay after r2’s position');
    expect(deliveredIds(path).at(-1)).toBe(sent[2]!.id);

    const beyond = await room.instructor.api.post(`${hooks(room.id)}/${endpoint.id}/replay`, { after: sent[2]!.seq + 1 });
    expect(beyond.status).toBe(400);
    expect(beyond.body.error.code).toBe('invalid_cursor');
    expect((await room.instructor.api.post(`${hooks(room.id)}/${endpoint.id}/replay`, { after: '1.x' })).body.error.code).toBe('invalid_cursor');
  });

  it('signs with the old and the new secret while a rotation overlaps', async () => {
    const room = await makeRoom(h, 0);
    const { endpoint, path } = await register(room);
    const rotated = await room.instructor.api.post(`${hooks(room.id)}/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);
    await post(room.instructor, room.id, 'rotated');
    await rx.until(() => rx.to(path).length === 1, 'the delivery');
    const d = rx.to(path)[0]!;
    expect(d.signature.split(' ')).toHaveLength(2);
    const headers = { 'webhook-id': d.id, 'webhook-timestamp': d.timestamp, 'webhook-signature': d.signature };
    for (const secret of [endpoint.secret, rotated.body.secret]) {
      const one = new Webhook(secret);
      expect(one.verify(d.body, headers)).toEqual(d.event);
      // Each secret has a signature of its own in the header.
      expect(d.signature.split(' ')).toContain(one.sign(d.id, new Date(Number(d.timestamp) * 1000), d.body));
    }
  });

  it('sends only the event types an endpoint takes, and an instructors-only question to the instructors’ endpoint only', async () => {
    const room = await makeRoom(h, 1);
    const joins = await register(room, { eventTypes: ['member.joined'] });
    const messages = await register(room, { eventTypes: ['message.created'] });
    const newcomer = await makeUser(h, 'learner');
    expect((await newcomer.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const question = await post(room.learners[0]!, room.id, 'a question for the instructors only', { audience: 'instructors', kind: 'question' });
    await rx.until(() => deliveredIds(joins.path).length === 1 && deliveredIds(messages.path).length === 1, 'one event each');
    expect(rx.to(joins.path)[0]!.event).toMatchObject({ type: 'member.joined', data: { userId: newcomer.id } });
    expect(rx.to(messages.path)[0]!.event).toMatchObject({ id: question.id, type: 'message.created', data: { message: { audience: 'instructors' } } });
    // Learners own no endpoints, so the question cannot reach a learner's receiver.
    expect((await newcomer.api.post(hooks(room.id), { url: rx.url('/mine'), eventTypes: ['message.created'] })).status).toBe(403);
    // Skipped events still move the cursor: the join-only endpoint stands at the room's head.
    await waitFor(async () => (await endpointOf(room, joins.endpoint.id)).position === (await endpointOf(room, messages.endpoint.id)).position, 'both cursors at the head');
  });

  it('keeps each room’s order, once each, while two app servers deliver side by side', async () => {
    const second = await startHarness();
    try {
      const rooms = [await makeRoom(h, 0), await makeRoom(h, 0), await makeRoom(h, 0)];
      const hooks = await Promise.all(rooms.map((room) => register(room, { eventTypes: ['message.created'] })));
      const posted: string[][] = rooms.map(() => []);
      // Posts through both servers, so both hear the commits and both wake streams.
      const via = [h.server.url, second.server.url];
      await Promise.all(
        rooms.map(async (room, r) => {
          for (let i = 0; i < 30; i++) {
            const res = await fetch(`${via[i % 2]}/api/rooms/${room.id}/messages`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${room.instructor.token}` },
              body: JSON.stringify(chat(`two servers ${i}`)),
            });
            expect(res.status).toBe(201);
            posted[r]!.push(((await res.json()) as { id: string }).id);
          }
        }),
      );
      await rx.until(() => hooks.every((hook, r) => rx.to(hook.path).length >= posted[r]!.length), 'every message at its endpoint');
      hooks.forEach((hook, r) => expect(rx.to(hook.path).map((d) => d.id)).toEqual(posted[r]));
    } finally {
      await second.close();
    }
  });

  it('stops an endpoint whose owner is no longer an instructor of the room', async () => {
    const room = await makeRoom(h, 0);
    const colleague = await makeUser(h, 'instructor');
    expect((await colleague.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const { endpoint, path } = await register(room, { by: colleague });
    expect((await del(room.instructor, `/api/rooms/${room.id}/members/${colleague.id}`)).status).toBe(204);
    await post(room.instructor, room.id, 'not for a former instructor');
    await waitFor(async () => (await endpointOf(room, endpoint.id)).disabledReason === 'owner_left', 'the endpoint disabled');
    // The removal's own member.left event may have gone out before; the message after it never.
    expect(rx.to(path).filter((d) => d.event.type === 'message.created')).toEqual([]);
  });
});

describe('webhook owners who leave', () => {
  it('sends a removed instructor’s endpoint nothing committed after the removal, even while events flow', async () => {
    const room = await makeRoom(h, 0);
    const colleague = await makeUser(h, 'instructor');
    expect((await colleague.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const { endpoint, path } = await register(room, { by: colleague, eventTypes: ['message.created'] });
    // A slow receiver: the pass is always busy, reading and sending, when the removal commits.
    rx.script(path, () => ({ status: 204, delayMs: 30 }));
    const after: string[] = [];
    let removed = false;
    let flowing = true;
    const flow = (async () => {
      for (let i = 0; flowing; i++) {
        const startedAfterRemoval = removed;
        const m = await post(room.instructor, room.id, `flow ${i}`);
        if (startedAfterRemoval) after.push(m.id);
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    await rx.until(() => deliveredIds(path).length >= 5, 'the flow reaching the endpoint');
    expect((await del(room.instructor, `/api/rooms/${room.id}/members/${colleague.id}`)).status).toBe(204);
    removed = true;
    // Longer than a lingering pass would have gone on before (it rechecked only at its start).
    await new Promise((r) => setTimeout(r, 1500));
    flowing = false;
    await flow;
    await waitFor(async () => (await endpointOf(room, endpoint.id)).disabledReason === 'owner_left', 'the endpoint disabled');
    expect(after.length).toBeGreaterThan(10);
    const sent = new Set(rx.to(path).map((d) => d.id));
    expect(after.filter((id) => sent.has(id))).toEqual([]);
  });

  it('refuses to resume an endpoint disabled because its owner left (409 webhook_owner_left): it stays off and its URL gets nothing', async () => {
    const room = await makeRoom(h, 0);
    const colleague = await makeUser(h, 'instructor');
    expect((await colleague.api.post('/api/rooms/join', { inviteCode: room.inviteCode })).status).toBe(200);
    const { endpoint, path } = await register(room, { by: colleague, eventTypes: ['message.created'] });
    expect((await del(room.instructor, `/api/rooms/${room.id}/members/${colleague.id}`)).status).toBe(204);
    await post(room.instructor, room.id, 'wakes the stream');
    await waitFor(async () => (await endpointOf(room, endpoint.id)).disabledReason === 'owner_left', 'the endpoint disabled');

    const resumed = await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: true });
    expect(resumed.status).toBe(409);
    expect(resumed.body.error.code).toBe('webhook_owner_left');
    expect(resumed.body.error.message).toMatch(/create a new endpoint/i);
    // Nothing else in the same request is applied either.
    expect((await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { description: 'mine now', enabled: true })).status).toBe(409);
    // Pausing it again is harmless and keeps the reason.
    expect((await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: false })).body.endpoint).toMatchObject({ enabled: false, disabledReason: 'owner_left' });
    expect((await patch(room.instructor, `${hooks(room.id)}/${endpoint.id}`, { enabled: true })).status).toBe(409);
    const now = await endpointOf(room, endpoint.id);
    expect(now).toMatchObject({ enabled: false, disabledReason: 'owner_left', ownerId: colleague.id, description: 'test receiver' });

    await post(room.instructor, room.id, 'still not for a former instructor');
    await new Promise((r) => setTimeout(r, 500));
    expect(rx.to(path)).toEqual([]);
    // The instructor's way: a new endpoint of their own.
    expect((await room.instructor.api.post(hooks(room.id), { url: rx.url(`/${uniqueName('hook')}`), eventTypes: ['message.created'] })).status).toBe(201);
  });
});

describe('webhook limits', () => {
  it('gives a room at most 10 endpoints: the 11th is a 409 too_many_webhooks; a deleted one makes room', async () => {
    const room = await makeRoom(h, 0);
    const made = await Promise.all(Array.from({ length: 10 }, () => register(room, { eventTypes: ['message.created'] })));
    const refused = await room.instructor.api.post(hooks(room.id), { url: rx.url('/eleventh'), eventTypes: ['message.created'] });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('too_many_webhooks');
    expect((await room.instructor.api.get(hooks(room.id))).body.endpoints).toHaveLength(10);
    expect((await del(room.instructor, `${hooks(room.id)}/${made[0]!.endpoint.id}`)).status).toBe(204);
    await register(room, { eventTypes: ['message.created'] });
    for (const m of made) await del(room.instructor, `${hooks(room.id)}/${m.endpoint.id}`);
  });

  it('lets one room’s hanging receivers hold a few delivery slots only: another room’s events go out at once', async () => {
    const hanging = await makeRoom(h, 0);
    const paths = (await Promise.all(Array.from({ length: 10 }, () => register(hanging, { eventTypes: ['message.created'] })))).map((r) => r.path);
    for (const p of paths) rx.script(p, () => ({ hold: true }));
    const other = await makeRoom(h, 0);
    const { path } = await register(other, { eventTypes: ['message.created'] });
    try {
      await post(hanging.instructor, hanging.id, 'nobody answers this');
      await rx.until(() => paths.filter((p) => rx.to(p).length > 0).length >= 4, 'the hanging room’s share of the slots taken');
      await new Promise((r) => setTimeout(r, 1000));
      // Four passes of the room hang; the rest of its streams wait their turn.
      expect(paths.reduce((n, p) => n + rx.to(p).length, 0)).toBe(4);
      const started = Date.now();
      const sent = await post(other.instructor, other.id, 'not stuck behind them');
      await rx.until(() => deliveredIds(path).includes(sent.id), 'the other room’s event', 3000);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      for (const p of paths) rx.script(p, () => ({ status: 204 }));
      rx.release();
      for (const e of (await hanging.instructor.api.get(hooks(hanging.id))).body.endpoints as WebhookEndpoint[]) await del(hanging.instructor, `${hooks(hanging.id)}/${e.id}`);
    }
  });
});

describe('webhook targets (SSRF)', () => {
  let strict: Harness;
  beforeAll(async () => {
    // As in production: private targets refused. No dispatcher here; the main one delivers.
    strict = await startHarness({ config: testConfig({ ROOMCAST_WEBHOOK_ALLOW_PRIVATE: 'false' }), webhooks: false });
  });
  afterAll(() => strict?.close());

  it('refuses plain http, and private, loopback, link-local, multicast and unspecified targets, with codes', async () => {
    const room = await makeRoom(strict, 0);
    const refused = async (url: string): Promise<{ code: string; message: string }> => {
      const res = await room.instructor.api.post(hooks(room.id), { url, eventTypes: ['message.created'] });
      expect(res.status, url).toBe(400);
      return res.body.error;
    };
    expect(await refused('http://93.184.215.14/hook')).toMatchObject({ code: 'webhook_url_invalid', message: expect.stringMatching(/https/) });
    expect((await refused('https://user:pw@93.184.215.14/hook')).code).toBe('webhook_url_invalid');
    expect((await refused('ftp://93.184.215.14/hook')).code).toBe('webhook_url_invalid');
    const kinds: [string, string][] = [
      ['https://127.0.0.1/hook', 'loopback'],
      ['https://127.1.2.3:8443/hook', 'loopback'],
      ['https://localhost/hook', 'loopback'],
      ['https://[::1]/hook', 'loopback'],
      ['https://[::ffff:127.0.0.1]/hook', 'loopback'],
      ['https://2130706433/hook', 'loopback'],
      ['https://10.1.2.3/hook', 'private'],
      ['https://172.16.5.4/hook', 'private'],
      ['https://192.168.1.1/hook', 'private'],
      ['https://[fd00::1]/hook', 'private'],
      ['https://169.254.169.254/latest/meta-data', 'link-local'],
      ['https://[fe80::1]/hook', 'link-local'],
      ['https://224.0.0.1/hook', 'multicast'],
      ['https://[ff02::1]/hook', 'multicast'],
      ['https://0.0.0.0/hook', 'unspecified'],
      ['https://[::]/hook', 'unspecified'],
    ];
    for (const [url, kind] of kinds) {
      const error = await refused(url);
      expect(error.code, url).toBe('webhook_target_forbidden');
      expect(error.message, url).toContain(`${kind} address`);
    }
    expect((await refused('https://no-such-host.invalid/hook')).code).toBe('webhook_target_unresolvable');
    // A public address is fine (nothing is sent until the room has an event).
    expect((await room.instructor.api.post(hooks(room.id), { url: 'https://93.184.215.14/hook', eventTypes: ['message.created'] })).status).toBe(201);
    // A change of URL is checked the same way.
    const [endpoint] = (await room.instructor.api.get(hooks(room.id))).body.endpoints as WebhookEndpoint[];
    expect((await patch(room.instructor, `${hooks(room.id)}/${endpoint!.id}`, { url: 'https://10.0.0.1/' })).body.error.code).toBe('webhook_target_forbidden');
    await del(room.instructor, `${hooks(room.id)}/${endpoint!.id}`);
  });

  it('checks the address again at delivery, and connects to the one it checked: a name that now resolves to loopback (DNS rebinding) gets nothing', async () => {
    let answers = ['93.184.215.14'];
    const sender = new WebhookSender({
      timeoutMs: 2000,
      policy: { allowPrivate: false },
      resolve: async () => answers.map((address) => ({ address, family: 4 as const })),
    });
    try {
      // Public at registration, loopback (where our receiver listens) at delivery.
      answers = ['127.0.0.1'];
      const body = JSON.stringify({ hello: 'rebinding' });
      const result = await sender.send({ url: `https://rebind.example:${rx.port}/rebound`, secrets: [`whsec_${randomBytes(32).toString('base64')}`], id: 'evt', body }, new AbortController().signal);
      expect(result).toMatchObject({ kind: 'failed', status: null });
      expect(result.error).toMatch(/^refused: 127\.0\.0\.1 is a loopback address/);
      // One private address among public ones is enough to refuse.
      answers = ['93.184.215.14', '10.0.0.7'];
      expect((await sender.send({ url: 'https://mixed.example/x', secrets: ['whsec_AAAA'], id: 'evt', body }, new AbortController().signal)).error).toMatch(/10\.0\.0\.7 is a private address/);
      expect(rx.to('/rebound')).toEqual([]);
    } finally {
      sender.close();
    }
  });
});
