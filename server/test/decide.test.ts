import { describe, expect, it } from 'vitest';
import type { Role } from '../../shared/protocol/messages';
import { instructorQueueName, roomAllKey, roomInstructorKey, roomUserKey } from '../../shared/protocol/routing';
import { decideResource, decideTopic, decideUser, type AuthLookups } from '../src/broker-auth/decide';
import type { QueueShape } from '../src/broker-auth/queue-shape';

const ROOM = '11111111-1111-4111-8111-111111111111';
const OTHER_ROOM = '22222222-2222-4222-8222-222222222222';
const LEARNER = '33333333-3333-4333-8333-333333333333';
const INSTRUCTOR = '44444444-4444-4444-8444-444444444444';

const members: Record<string, Role> = { [`${ROOM}/${LEARNER}`]: 'learner', [`${ROOM}/${INSTRUCTOR}`]: 'instructor' };
/** What STOMP declares for a plain SUBSCRIBE: not durable, auto-delete, no arguments. */
const TEMPORARY: QueueShape = { durable: false, autoDelete: true, exclusive: false, arguments: {} };
const owners = new Map<string, string>();
const consumes = new Map<string, number>();
const shapes = new Map<string, QueueShape>();
const lookups: AuthLookups = {
  checkBrokerToken: async (u, p) => u === LEARNER && p === 'good',
  roleOf: async (r, u) => members[`${r}/${u}`] ?? null,
  claimQueue: async (q, u) => {
    const fresh = !owners.has(q);
    if (fresh) owners.set(q, u);
    return { owner: owners.get(q)!, fresh };
  },
  releaseQueue: async (q, u) => {
    if (owners.get(q) === u) owners.delete(q);
  },
  queueOwner: async (q) => owners.get(q) ?? null,
  countConsume: async (q) => {
    consumes.set(q, (consumes.get(q) ?? 0) + 1);
    return consumes.get(q)!;
  },
  queueShape: async (q) => shapes.get(q) ?? null,
};
const topic = (username: string, routing_key: string, permission = 'read') =>
  decideTopic({ username, vhost: '/', name: 'amq.topic', permission, routing_key }, lookups);
const resource = (username: string, resource: string, name: string, permission: string) =>
  decideResource({ username, vhost: '/', resource, name, permission }, lookups);
let queueSeq = 0;
const freshName = (): string => `stomp-subscription-test${++queueSeq}`;
/** `user` declares a fresh subscription queue with `shape`: configure is asked first, then the queue exists. */
async function declared(user: string, shape: QueueShape = TEMPORARY): Promise<string> {
  const q = freshName();
  expect((await resource(user, 'queue', q, 'configure')).allow).toBe(true);
  shapes.set(q, shape);
  return q;
}

describe('broker-auth policy', () => {
  it('allows login only with the user’s own live token', async () => {
    expect((await decideUser({ username: LEARNER, password: 'good' }, lookups)).allow).toBe(true);
    expect((await decideUser({ username: LEARNER, password: 'bad' }, lookups)).allow).toBe(false);
    expect((await decideUser({ username: 'guest', password: 'good' }, lookups)).allow).toBe(false);
  });

  it('lets members read the room key and their own key, nothing else', async () => {
    expect((await topic(LEARNER, roomAllKey(ROOM))).allow).toBe(true);
    expect((await topic(LEARNER, roomUserKey(ROOM, LEARNER))).allow).toBe(true);
    expect((await topic(LEARNER, roomUserKey(ROOM, INSTRUCTOR))).allow).toBe(false);
    expect((await topic(LEARNER, roomInstructorKey(ROOM))).allow).toBe(false);
    expect((await topic(LEARNER, roomAllKey(OTHER_ROOM))).allow).toBe(false);
    expect((await topic(LEARNER, 'room.*.all')).allow).toBe(false);
    expect((await topic(LEARNER, '#')).allow).toBe(false);
  });

  it('never lets a browser user publish', async () => {
    expect((await topic(INSTRUCTOR, roomAllKey(ROOM), 'write')).allow).toBe(false);
    expect((await resource(INSTRUCTOR, 'exchange', 'amq.topic', 'write')).allow).toBe(false);
    expect((await resource(INSTRUCTOR, 'exchange', 'amq.default', 'write')).allow).toBe(false);
  });

  it('lets only the instructor consume its own queue, and nobody configure it', async () => {
    const q = instructorQueueName(ROOM, INSTRUCTOR);
    expect((await resource(INSTRUCTOR, 'queue', q, 'read')).allow).toBe(true);
    expect((await resource(INSTRUCTOR, 'queue', q, 'configure')).allow).toBe(false);
    expect((await resource(LEARNER, 'queue', q, 'read')).allow).toBe(false);
    expect((await resource(LEARNER, 'queue', instructorQueueName(ROOM, LEARNER), 'read')).allow).toBe(false);
    expect((await resource(LEARNER, 'queue', 'some-durable-queue', 'configure')).allow).toBe(false);
  });

  it('lets the user who declared a subscription queue bind it and consume it twice (a page\'s two keys), no more', async () => {
    const q = await declared(LEARNER);
    expect((await resource(LEARNER, 'queue', q, 'read')).allow).toBe(true);
    expect((await resource(LEARNER, 'queue', q, 'write')).allow).toBe(true);
    // Deleting it again (STOMP cleans up after a refused bind) is configure too.
    expect((await resource(LEARNER, 'queue', q, 'configure')).allow).toBe(true);
    // The page's second topic subscription on the same queue.
    expect((await resource(LEARNER, 'queue', q, 'read')).allow).toBe(true);
    // A third consumer, even its owner's, would keep it alive past the page.
    expect((await resource(LEARNER, 'queue', q, 'read')).allow).toBe(false);
  });

  it("refuses every permission on another user's subscription queue name", async () => {
    const q = await declared(LEARNER);
    for (const permission of ['configure', 'write', 'read']) {
      expect((await resource(INSTRUCTOR, 'queue', q, permission)).allow).toBe(false);
    }
    // Refusing the stranger did not use up the owner's consumes.
    expect((await resource(LEARNER, 'queue', q, 'read')).allow).toBe(true);
  });

  it('refuses claiming the name of a queue that exists once its claim has lapsed, to anyone', async () => {
    const q = await declared(LEARNER);
    owners.delete(q); // the claim expired while the queue lives on
    for (const user of [INSTRUCTOR, LEARNER]) {
      expect((await resource(user, 'queue', q, 'configure')).allow).toBe(false);
      expect((await resource(user, 'queue', q, 'read')).allow).toBe(false);
      expect((await resource(user, 'queue', q, 'write')).allow).toBe(false);
    }
    expect(owners.has(q)).toBe(false);
  });

  it('refuses consuming a subscription queue nobody declared, or one that is gone', async () => {
    const undeclared = freshName();
    shapes.set(undeclared, TEMPORARY);
    expect((await resource(LEARNER, 'queue', undeclared, 'read')).allow).toBe(false);
    const gone = freshName();
    expect((await resource(LEARNER, 'queue', gone, 'configure')).allow).toBe(true);
    expect((await resource(LEARNER, 'queue', gone, 'read')).allow).toBe(false);
  });

  it('refuses consuming a subscription queue that would outlive its consumers', async () => {
    const lingering: QueueShape[] = [
      { ...TEMPORARY, durable: true },
      { ...TEMPORARY, autoDelete: false },
      { ...TEMPORARY, arguments: { 'x-expires': 60_000 } },
      { ...TEMPORARY, arguments: { 'x-queue-type': 'quorum' }, durable: true, autoDelete: false },
    ];
    for (const shape of lingering) {
      const q = await declared(LEARNER, shape);
      expect((await resource(LEARNER, 'queue', q, 'read')).allow, JSON.stringify(shape)).toBe(false);
    }
    // Exclusive without auto-delete still dies with its connection.
    const exclusive = await declared(LEARNER, { ...TEMPORARY, autoDelete: false, exclusive: true });
    expect((await resource(LEARNER, 'queue', exclusive, 'read')).allow).toBe(true);
  });

  it('refuses server-named and other queues to browser users', async () => {
    for (const permission of ['configure', 'write', 'read']) {
      expect((await resource(LEARNER, 'queue', 'amq.gen-abc', permission)).allow).toBe(false);
      expect((await resource(LEARNER, 'queue', 'rc.iq.room', permission)).allow).toBe(false);
    }
  });
});
