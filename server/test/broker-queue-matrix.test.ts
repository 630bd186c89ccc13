/**
 * What the broker itself allows a browser user, straight against Web-STOMP (no proxy in
 * front): every destination form the STOMP plugin accepts × every header that shapes a queue
 * × each role. Each cell asserts refused or allowed, and for queues a cell names, what the
 * queue looks like (management API) and that it is gone once nobody uses it. The same matrix,
 * with the reasons, is in docs/security.md.
 */
import { randomBytes } from 'node:crypto';
import type { StompHeaders } from '@stomp/stompjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { instructorQueueName, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
import { createServer } from 'node:net';
import { claimKeys } from '../src/broker-auth/queue-claims';
import { BROKER_AUTHZ_CACHE_MS } from '../src/revocation/revocations';
import { QueueShapeLookup, QueueShapeUnavailableError } from '../src/broker-auth/queue-shape';
import { createRedis } from '../src/redis';
import { chat, makeRoom, startHarness, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { connectStomp, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

let h: Harness;
let room: TestRoom;
let otherRoom: TestRoom;
const open: StompSession[] = [];
/** Queues a cell named: each must be gone by the end (auto-delete, cleanup or the expiry policy). */
const named = new Set<string>();

type Role = 'learner' | 'instructor' | 'non-member';
const ROLES: Role[] = ['learner', 'instructor', 'non-member'];
type Outcome = 'allowed' | 'refused';

/** The policy's expiry of an unused subscription queue (rabbitmq/definitions.template.json). */
const SUBSCRIPTION_QUEUE_EXPIRES_MS = 10_000;

const userOf = (role: Role): TestUser =>
  role === 'learner' ? room.learners[0]! : role === 'instructor' ? room.instructor : otherRoom.learners[0]!;

/** A fresh queue name of the form STOMP gives its subscription queues, as a client may choose it. */
const subscriptionName = (): string => {
  const q = `stomp-subscription-matrix-${randomBytes(8).toString('hex')}`;
  named.add(q);
  return q;
};

async function stompAs(user: TestUser, node = 0): Promise<StompSession> {
  const res = await user.api.post('/api/broker-token');
  expect(res.status).toBe(200);
  const s = await connectStomp(webStompUrl(h.config, node), res.body.login, res.body.passcode);
  open.push(s);
  return s;
}

/**
 * SUBSCRIBE with a receipt: RabbitMQ sends the RECEIPT only after the queue is declared,
 * consumed and bound, and answers a refusal with ERROR and a closed connection.
 */
async function subscribe(s: StompSession, destination: string, headers: StompHeaders = {}, onMessage: (m: RoomMessage) => void = () => undefined): Promise<Outcome> {
  const receipt = `r-${randomBytes(6).toString('hex')}`;
  let receipted = false;
  let closed = false;
  s.client.watchForReceipt(receipt, () => (receipted = true));
  void s.closed.then(() => (closed = true));
  s.client.subscribe(destination, (m) => onMessage(JSON.parse(m.body) as RoomMessage), { id: `sub-${receipt}`, ...headers, receipt });
  await waitFor(() => receipted || closed || s.errors.length > 0, `an answer to SUBSCRIBE ${destination}`);
  return receipted ? 'allowed' : 'refused';
}

/** SEND; browsers may never publish, so the only question is how the refusal looks. */
async function send(s: StompSession, destination: string, headers: StompHeaders = {}): Promise<Outcome> {
  const receipt = `r-${randomBytes(6).toString('hex')}`;
  let receipted = false;
  let closed = false;
  s.client.watchForReceipt(receipt, () => (receipted = true));
  void s.closed.then(() => (closed = true));
  s.client.publish({ destination, body: '{"forged":true}', headers: { ...headers, receipt } });
  await waitFor(() => receipted || closed || s.errors.length > 0, `an answer to SEND ${destination}`);
  return receipted ? 'allowed' : 'refused';
}

interface QueueInfo {
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: Record<string, unknown>;
  type: string;
}

async function queueInfo(name: string): Promise<QueueInfo | null> {
  const { host, managementPort } = h.config.rabbitmq.nodes[0]!;
  const auth = Buffer.from(`${h.config.rabbitmq.user}:${h.config.rabbitmq.password}`).toString('base64');
  const res = await fetch(`http://${host}:${managementPort}/api/queues/%2F/${encodeURIComponent(name)}?disable_stats=true`, {
    headers: { authorization: `Basic ${auth}` },
  });
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  return (await res.json()) as QueueInfo;
}

/**
 * The shape of every queue a browser may read: it dies with its consumers (auto-delete) or its
 * connection (exclusive), is not durable and has no arguments.
 */
function expectTemporary(q: QueueInfo | null, expected: { exclusive: boolean; autoDelete: boolean }): void {
  expect(q).not.toBeNull();
  expect({ durable: q!.durable, auto_delete: q!.auto_delete, exclusive: q!.exclusive, arguments: q!.arguments }).toEqual({
    durable: false,
    auto_delete: expected.autoDelete,
    exclusive: expected.exclusive,
    arguments: {},
  });
}

beforeAll(async () => {
  h = await startHarness();
  room = await makeRoom(h, 1);
  otherRoom = await makeRoom(h, 1);
});

afterAll(async () => {
  await Promise.all(open.map((s) => s.disconnect()));
  await h?.close();
});

/** Rows on the room's own routing key: `x-queue-name` set to a fresh subscription name unless `ownName` is false. */
interface Row {
  headers: StompHeaders;
  /** What the broker does for a member (learner or instructor); non-members are always refused. */
  member: Outcome;
  /** The queue's properties when allowed: STOMP's default for topic subscriptions is auto-delete, not exclusive. */
  shape?: { exclusive: boolean; autoDelete: boolean };
}

const QUEUE_SHAPING: Record<string, Row> = {
  'no header (STOMP names the queue)': { headers: {}, member: 'allowed' },
  'x-queue-name (a subscription-like name)': { headers: { 'x-queue-name': '$sub' }, member: 'allowed' },
  'x-queue-name (any other name)': { headers: { 'x-queue-name': 'matrix-chosen-$rand' }, member: 'refused' },
  'durable:true': { headers: { 'x-queue-name': '$sub', durable: 'true' }, member: 'refused' },
  'persistent:true': { headers: { 'x-queue-name': '$sub', persistent: 'true' }, member: 'refused' },
  'auto-delete:false': { headers: { 'x-queue-name': '$sub', 'auto-delete': 'false' }, member: 'refused' },
  'durable:true + auto-delete:false': { headers: { 'x-queue-name': '$sub', durable: 'true', 'auto-delete': 'false' }, member: 'refused' },
  'durable:true (STOMP names the queue from the id)': { headers: { durable: 'true' }, member: 'refused' },
  'exclusive:true': { headers: { 'x-queue-name': '$sub', exclusive: 'true' }, member: 'allowed', shape: { exclusive: true, autoDelete: true } },
  // Exclusive: deleted when its connection closes, whatever auto-delete says.
  'exclusive:true + auto-delete:false': {
    headers: { 'x-queue-name': '$sub', exclusive: 'true', 'auto-delete': 'false' },
    member: 'allowed',
    shape: { exclusive: true, autoDelete: false },
  },
  'x-expires': { headers: { 'x-queue-name': '$sub', 'x-expires': '600000' }, member: 'refused' },
  'x-message-ttl': { headers: { 'x-queue-name': '$sub', 'x-message-ttl': '600000' }, member: 'refused' },
  'x-max-length': { headers: { 'x-queue-name': '$sub', 'x-max-length': '1000000' }, member: 'refused' },
  'x-max-length-bytes': { headers: { 'x-queue-name': '$sub', 'x-max-length-bytes': '100000000' }, member: 'refused' },
  'x-max-priority': { headers: { 'x-queue-name': '$sub', 'x-max-priority': '10' }, member: 'refused' },
  'x-queue-type:quorum': { headers: { 'x-queue-name': '$sub', 'x-queue-type': 'quorum', durable: 'true', 'auto-delete': 'false' }, member: 'refused' },
  'x-dead-letter-exchange': { headers: { 'x-queue-name': '$sub', 'x-dead-letter-exchange': 'amq.topic', 'x-dead-letter-routing-key': 'room.x.all' }, member: 'refused' },
};

/** Replaces `$sub` with a fresh subscription queue name and `$rand` with random hex. */
function instantiate(headers: StompHeaders): { headers: StompHeaders; queue: string | null } {
  let queue: string | null = null;
  const out: StompHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === '$sub') out[k] = queue = subscriptionName();
    else if (typeof v === 'string' && v.includes('$rand')) {
      out[k] = queue = v.replace('$rand', randomBytes(6).toString('hex'));
      named.add(queue);
    } else out[k] = v;
  }
  return { headers: out, queue };
}

describe('broker queue matrix: topic subscriptions (/exchange/amq.topic/<key>, /topic/<key>)', () => {
  const forms = {
    '/exchange': (key: string) => `/exchange/amq.topic/${key}`,
    '/topic': (key: string) => `/topic/${key}`,
  };
  for (const [form, destination] of Object.entries(forms)) {
    for (const [header, row] of Object.entries(QUEUE_SHAPING)) {
      it(`${form} × ${header}: members ${row.member}, non-members refused`, async () => {
        await Promise.all(
          ROLES.map(async (role) => {
            const expected = role === 'non-member' ? 'refused' : row.member;
            const { headers, queue } = instantiate(row.headers);
            const s = await stompAs(userOf(role));
            expect(await subscribe(s, destination(roomAllKey(room.id)), headers), `${role}`).toBe(expected);
            if (expected === 'allowed' && queue) {
              expectTemporary(await queueInfo(queue), row.shape ?? { exclusive: false, autoDelete: true });
              await s.disconnect();
              await waitFor(async () => (await queueInfo(queue)) === null, `${queue} to die with its connection`);
            }
          }),
        );
      });
    }
  }
});

describe('broker queue matrix: queue destinations', () => {
  it('/queue/<subscription name> with no header: refused for everyone (STOMP makes it durable), and the queue expires', async () => {
    await Promise.all(
      ROLES.map(async (role) => {
        const q = subscriptionName();
        const s = await stompAs(userOf(role));
        expect(await subscribe(s, `/queue/${q}`), role).toBe('refused');
      }),
    );
  });

  it('/queue/<subscription name> with durable:false: allowed to anyone, an unbound exclusive queue', async () => {
    await Promise.all(
      ROLES.map(async (role) => {
        const q = subscriptionName();
        const s = await stompAs(userOf(role));
        // STOMP makes a non-durable /queue/ queue exclusive and auto-delete.
        expect(await subscribe(s, `/queue/${q}`, { durable: 'false' }), role).toBe('allowed');
        expectTemporary(await queueInfo(q), { exclusive: true, autoDelete: true });
        await s.disconnect();
        await waitFor(async () => (await queueInfo(q)) === null, `${q} to die with its connection`);
      }),
    );
  });

  it('a bare destination (no prefix) is a /queue/ destination: refused as durable', async () => {
    await Promise.all(
      ROLES.map(async (role) => {
        const s = await stompAs(userOf(role));
        expect(await subscribe(s, subscriptionName()), role).toBe('refused');
      }),
    );
  });

  it('/queue/<any other name>, the instructor queue included: refused for everyone', async () => {
    const names = [`matrix-chosen-${randomBytes(6).toString('hex')}`, instructorQueueName(room.id, room.instructor.id)];
    for (const name of names) {
      await Promise.all(
        ROLES.map(async (role) => {
          const s = await stompAs(userOf(role));
          expect(await subscribe(s, `/queue/${name}`, { durable: 'false', 'auto-delete': 'true' }), `${role} ${name}`).toBe('refused');
        }),
      );
    }
    expect(await queueInfo(names[0]!)).toBeNull();
  });

  for (const form of ['/amq/queue', '/reply-queue']) {
    it(`${form}/<instructor queue>: only its instructor; queue-shaping headers change nothing`, async () => {
      const iq = instructorQueueName(room.id, room.instructor.id);
      const shape = (q: QueueInfo | null) => q && { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive, arguments: q.arguments, type: q.type };
      const before = shape(await queueInfo(iq));
      expect(before).toMatchObject({ durable: true, type: 'quorum' });
      const expected: Record<Role, Outcome> = { learner: 'refused', instructor: 'allowed', 'non-member': 'refused' };
      const headerSets: StompHeaders[] = [{}, { durable: 'false', 'auto-delete': 'true', exclusive: 'true', 'x-queue-name': subscriptionName(), 'x-expires': '1000' }];
      for (const headers of headerSets) {
        await Promise.all(
          ROLES.map(async (role) => {
            const s = await stompAs(userOf(role));
            expect(await subscribe(s, `${form}/${iq}`, { ack: 'client-individual', ...headers }), role).toBe(expected[role]);
          }),
        );
      }
      expect(shape(await queueInfo(iq))).toEqual(before);
    });

    it(`${form}/<a page's queue, both its keys subscribed>: refused for everyone, its owner's other connections too`, async () => {
      const q = subscriptionName();
      const learner = room.learners[0]!;
      const owner = await stompAs(learner);
      const heard: RoomMessage[] = [];
      // The web client's two topic subscriptions, on the one queue the page names. The node's
      // authorization cache answers a second consume within its TTL without asking broker-auth
      // (docs/decisions/0007-browser-queues.md); waiting it out makes broker-auth count both.
      for (const key of [roomAllKey(room.id), roomUserKey(room.id, learner.id)]) {
        expect(await subscribe(owner, `/exchange/amq.topic/${key}`, { 'x-queue-name': q }, (m) => heard.push(m)), key).toBe('allowed');
        if (key === roomAllKey(room.id)) await new Promise((r) => setTimeout(r, BROKER_AUTHZ_CACHE_MS + 500));
      }
      expectTemporary(await queueInfo(q), { exclusive: false, autoDelete: true });
      for (const user of [room.instructor, otherRoom.learners[0]!, learner]) {
        const s = await stompAs(user, 1);
        expect(await subscribe(s, `${form}/${q}`), user.username).toBe('refused');
      }
      // Its owner's subscriptions were not disturbed: one copy of each message, whichever key it came by.
      const toAll = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('still mine'));
      const toMe = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('just me', { audience: 'member', recipientId: learner.id, kind: 'answer' }));
      expect([toAll.status, toMe.status]).toEqual([201, 201]);
      await waitFor(() => heard.some((m) => m.id === toAll.body.id) && heard.some((m) => m.id === toMe.body.id), 'the owner to keep receiving on both keys');
      await new Promise((r) => setTimeout(r, 300));
      expect(heard.filter((m) => m.id === toAll.body.id || m.id === toMe.body.id)).toHaveLength(2);
      await owner.disconnect();
      await waitFor(async () => (await queueInfo(q)) === null, `${q} to die with its connection`);
    });

    it(`${form}/<a subscription name nobody declared>: refused`, async () => {
      const s = await stompAs(room.learners[0]!);
      expect(await subscribe(s, `${form}/${subscriptionName()}`)).toBe('refused');
    });
  }

  it('/temp-queue/<id>: not a SUBSCRIBE destination (ERROR) for everyone', async () => {
    await Promise.all(
      ROLES.map(async (role) => {
        const s = await stompAs(userOf(role));
        expect(await subscribe(s, '/temp-queue/matrix'), role).toBe('refused');
      }),
    );
  });
});

describe('broker queue matrix: SEND (browsers never publish)', () => {
  const sends: Record<string, () => { destination: string; headers?: StompHeaders }> = {
    '/exchange/amq.topic/<room key>': () => ({ destination: `/exchange/amq.topic/${roomAllKey(room.id)}` }),
    '/topic/<room key>': () => ({ destination: `/topic/${roomAllKey(room.id)}` }),
    '/queue/<subscription name> (declares a durable queue first)': () => ({ destination: `/queue/${subscriptionName()}` }),
    '/amq/queue/<instructor queue>': () => ({ destination: `/amq/queue/${instructorQueueName(room.id, room.instructor.id)}` }),
    'reply-to:/temp-queue/<id> (declares a server-named queue first)': () => ({
      destination: `/topic/${roomAllKey(room.id)}`,
      headers: { 'reply-to': '/temp-queue/matrix' },
    }),
  };
  for (const [what, make] of Object.entries(sends)) {
    it(`SEND ${what}: refused for everyone`, async () => {
      await Promise.all(
        ROLES.map(async (role) => {
          const { destination, headers } = make();
          const s = await stompAs(userOf(role));
          expect(await send(s, destination, headers), role).toBe('refused');
        }),
      );
    });
  }
});

describe('broker queue matrix: logged out', () => {
  it("a logged-out user's broker token opens no connection, so every cell is refused", async () => {
    const lone = await makeRoom(h, 1);
    const learner = lone.learners[0]!;
    const t = await learner.api.post('/api/broker-token');
    expect((await learner.api.post('/api/auth/logout')).status).toBe(204);
    await expect(connectStomp(webStompUrl(h.config), t.body.login, t.body.passcode)).rejects.toThrow();
  });
});

describe('the attack from issue 10: a queue left behind for someone else', () => {
  it('a member cannot leave a durable queue bound to its room for a non-member to consume later', async () => {
    const q = subscriptionName();
    const member = await stompAs(room.learners[0]!);
    // The member tries to leave a durable, never-deleted queue bound to the room...
    await subscribe(member, `/exchange/amq.topic/${roomAllKey(room.id)}`, { 'x-queue-name': q, durable: 'true', 'auto-delete': 'false' });
    await member.disconnect();
    const sent = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('for members only'));
    expect(sent.status).toBe(201);

    // ...and a non-member (then anyone) tries to read it, by consuming it or by redeclaring it.
    const heard: RoomMessage[] = [];
    const stranger = await stompAs(otherRoom.learners[0]!, 2);
    expect(await subscribe(stranger, `/amq/queue/${q}`, {}, (m) => heard.push(m))).toBe('refused');
    const redeclare = await stompAs(otherRoom.learners[0]!, 2);
    expect(
      await subscribe(redeclare, `/exchange/amq.topic/${roomAllKey(otherRoom.id)}`, { 'x-queue-name': q, durable: 'true', 'auto-delete': 'false' }, (m) =>
        heard.push(m),
      ),
    ).toBe('refused');
    const again = await stompAs(room.learners[0]!, 1);
    expect(await subscribe(again, `/amq/queue/${q}`, {}, (m) => heard.push(m))).toBe('refused');
    expect(heard).toEqual([]);
    await waitFor(async () => (await queueInfo(q)) === null, `${q} to be gone`, SUBSCRIPTION_QUEUE_EXPIRES_MS + 5000);
  });
});

describe('a live queue whose claim has lapsed', () => {
  it('cannot be re-claimed, consumed or bound by anyone, its owner included', async () => {
    const q = subscriptionName();
    const owner = await stompAs(room.learners[0]!);
    const heard: RoomMessage[] = [];
    expect(await subscribe(owner, `/exchange/amq.topic/${roomAllKey(room.id)}`, { 'x-queue-name': q }, (m) => heard.push(m))).toBe('allowed');
    // Claims are kept minutes, connections live for hours: forget this one as Redis would.
    const redis = createRedis(h.config, () => undefined);
    await redis.del(...claimKeys(q));
    await redis.quit();

    const stranger = await stompAs(otherRoom.learners[0]!, 1);
    expect(await subscribe(stranger, `/exchange/amq.topic/${roomAllKey(otherRoom.id)}`, { 'x-queue-name': q })).toBe('refused');
    for (const user of [otherRoom.learners[0]!, room.learners[0]!]) {
      const s = await stompAs(user, 2);
      expect(await subscribe(s, `/amq/queue/${q}`), user.username).toBe('refused');
    }
    const sent = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, chat('still only mine'));
    await waitFor(() => heard.some((m) => m.id === sent.body.id), 'the owner to keep receiving');
    await owner.disconnect();
  });
});

describe("broker-auth's view of a queue (management API)", () => {
  /** A loopback port nothing listens on: a node that is down. */
  async function closedPort(): Promise<number> {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as { port: number };
    await new Promise((r) => srv.close(r));
    return port;
  }

  it('reads the shape from another node when one is down, null for no queue, and fails closed when none answers', async () => {
    const down = await closedPort();
    const nodes = h.config.rabbitmq.nodes;
    const withDown = (count: number) => ({
      ...h.config,
      rabbitmq: { ...h.config.rabbitmq, nodes: nodes.map((n, i) => (i < count ? { ...n, managementPort: down } : n)) },
    });
    const lookup = new QueueShapeLookup(withDown(nodes.length - 1));
    const iq = instructorQueueName(room.id, room.instructor.id);
    for (let i = 0; i < nodes.length; i++) {
      expect(await lookup.get(iq)).toEqual({ durable: true, autoDelete: false, exclusive: false, arguments: expect.objectContaining({ 'x-queue-type': 'quorum' }) });
    }
    expect(await lookup.get(subscriptionName())).toBeNull();
    await expect(new QueueShapeLookup(withDown(nodes.length)).get(iq)).rejects.toBeInstanceOf(QueueShapeUnavailableError);
  });
});

describe('every queue a cell named', () => {
  it('is gone: deleted with its connection, by STOMP after a refusal, or by the expiry policy', async () => {
    let left = [...named];
    await waitFor(
      async () => {
        const info = await Promise.all(left.map(queueInfo));
        left = left.filter((_, i) => info[i] !== null);
        return left.length === 0;
      },
      `every named queue to be gone`,
      SUBSCRIPTION_QUEUE_EXPIRES_MS + 5000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; left: ${left.join(', ')}`);
    });
  }, 30_000);
});
