/**
 * Convergence of the client library: whatever the timing of publishes, a client that reconnects
 * ends with exactly the messages it may see. The case that used to break it: a message committed
 * but published late (its app server died between commit and publish, the relay sent it
 * seconds later) while the room went on and the client was between connections.
 */
import { randomBytes } from 'node:crypto';
import type { ResyncPage, RoomMessage, SendMessageRequest } from '../../shared/protocol/messages';
import { PASSWORD, chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { RoomClient, RoomcastApi } from '../../web/src/client/index';
import { expect, test } from '../support/fixtures';
import { steeredSockets } from '../support/node-socket';

/** Records every resync request's cursors. */
class RecordingApi extends RoomcastApi {
  readonly cursors: { after: number; personalAfter: number }[] = [];
  override messagesAfter(roomId: string, cursors: { after: number; personalAfter: number }, limit: number): Promise<ResyncPage> {
    this.cursors.push({ ...cursors });
    return super.messagesAfter(roomId, cursors, limit);
  }
}

/** Everything `user` may see in the room, as the server holds it. */
async function serverView(user: TestUser, roomId: string): Promise<string[]> {
  const res = await user.api.get(`/api/rooms/${roomId}/messages?after=0&limit=500`);
  expect(res.status).toBe(200);
  expect(res.body.hasMore).toBe(false);
  return (res.body.messages as RoomMessage[]).map((m) => m.id);
}

async function post(room: TestRoom, sender: TestUser, text: string, extra: Record<string, unknown> = {}): Promise<RoomMessage> {
  const res = await sender.api.post(`/api/rooms/${room.id}/messages`, chat(text, extra));
  expect(res.status).toBe(201);
  return res.body.message as RoomMessage;
}

let h: Harness;

test.beforeAll(async () => {
  // No relay in this server: the test decides when the held-back message is published.
  h = await startHarness({ relay: false });
});
test.afterAll(async () => {
  await h.close();
});

async function learnerClient(room: TestRoom, learner: TestUser) {
  const api = new RecordingApi({ baseUrl: h.server.url });
  await api.login(learner.username, PASSWORD);
  const sockets = steeredSockets();
  const stompUrls = h.config.rabbitmq.nodes.map((n) => n.webStompUrl);
  const client = new RoomClient({
    api,
    roomId: room.id,
    stompUrls,
    webSocketFactory: sockets.factory,
    reconnect: { initialMs: 50, maxMs: 300 },
  });
  client.start();
  await expect.poll(() => client.state).toBe('live');
  return { api, sockets, client };
}

test('a message published late, while the client was away and the room went on, reaches it on reconnect', async () => {
  const room = await makeRoom(h, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const { api, sockets, client } = await learnerClient(room, ann);
  try {
    // Committed, not published: as when an app server dies right after the commit.
    const request: SendMessageRequest = { clientMsgId: `late-${randomBytes(4).toString('hex')}`, audience: 'everyone', kind: 'chat', body: { text: 'late' } };
    const stored = await h.server.services.messages.insert(room.id, bob.id, request);
    if (stored.replayed) throw new Error('a fresh client message id was taken for a replay');
    const late = stored.message;
    // Its lease held, as by a relay that claimed it: no other server's relay publishes it meanwhile.
    await h.server.services.pool.query(`UPDATE jobs SET lease_until = now() + interval '10 minutes' WHERE id = $1`, [stored.publishJob.id]);
    // The room goes on, well past any overlap a client could guess, and the client shows it all live.
    const flowed: string[] = [];
    for (let i = 0; i < 30; i++) flowed.push((await post(room, bob, `flow ${i}`)).id);
    await expect.poll(() => flowed.every((id) => client.messages.some((m) => m.id === id))).toBe(true);
    expect(client.messages.some((m) => m.id === late.id)).toBe(false);

    // The client loses its connection and stays away while the late message is published.
    sockets.block(true);
    sockets.cutAll();
    await expect.poll(() => client.state).not.toBe('live');
    expect(await h.server.services.ledger.deliver(stored.publishJob, late, 'relay', 600_000)).toBe('confirmed');
    for (let i = 0; i < 5; i++) await post(room, bob, `after ${i}`);

    const resyncsBefore = api.cursors.length;
    sockets.block(false);
    await expect.poll(() => client.messages.map((m) => m.id), { timeout: 20_000 }).toEqual(await serverView(ann, room.id));
    // It got there by asking from a point it had proven, below the late message.
    expect(api.cursors.slice(resyncsBefore).some((c) => c.after < late.seq)).toBe(true);
  } finally {
    await client.stop();
  }
});

test('a client that stayed live resyncs from its newest proven point, not from what it had when it connected', async () => {
  const room = await makeRoom(h, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const { api, sockets, client } = await learnerClient(room, ann);
  try {
    // A private message to ann early on, and bob's questions that ann may not see, in between.
    await post(room, room.instructor, 'just for ann', { audience: 'member', recipientId: ann.id });
    for (let i = 0; i < 60; i++) await post(room, bob, `live ${i}`, i % 10 === 0 ? { audience: 'instructors', kind: 'question' } : {});
    const last = await post(room, bob, 'last');
    await expect.poll(() => client.messages.at(-1)?.id).toBe(last.id);

    const resyncsBefore = api.cursors.length;
    sockets.cutAll();
    await expect.poll(() => api.cursors.length).toBeGreaterThan(resyncsBefore);
    // The room-wide cursor moved with the live messages, across the gaps of what ann may not see:
    // nothing is re-read.
    expect(api.cursors[resyncsBefore]?.after).toBe(last.seq);
    await expect.poll(() => client.state).toBe('live');
    expect(client.messages.map((m) => m.id)).toEqual(await serverView(ann, room.id));
  } finally {
    await client.stop();
  }
});

test('the resync reports up to where it is complete, and reads personal messages from their own cursor', async () => {
  const room = await makeRoom(h, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const toAnn = await post(room, room.instructor, 'to ann', { audience: 'member', recipientId: ann.id });
  const annAsks = await post(room, ann, 'ann asks', { audience: 'instructors', kind: 'question' });
  const broadcast = await post(room, bob, 'to all');
  const bobAsks = await post(room, bob, 'bob asks', { audience: 'instructors', kind: 'question' });
  const get = async (q: string): Promise<ResyncPage> => (await ann.api.get(`/api/rooms/${room.id}/messages?${q}`)).body as ResyncPage;

  // Room-wide from 3 on, personal from 0 on: ann's own and addressed messages, and what is new to everyone.
  const mixed = await get(`after=${broadcast.seq}&personalAfter=0`);
  expect(mixed.messages.map((m) => m.id)).toEqual([toAnn.id, annAsks.id]);
  // Complete up to the room's newest seq, although bob's question (the newest) is not ann's to see.
  expect(mixed.through).toBe(bobAsks.seq);
  expect(mixed.hasMore).toBe(false);

  // A full page is complete only up to its last row.
  const paged = await get('after=0&limit=1');
  expect(paged.messages.map((m) => m.id)).toEqual([toAnn.id]);
  expect(paged).toMatchObject({ hasMore: true, nextAfter: toAnn.seq, through: toAnn.seq });
});
