import { describe, expect, it } from 'vitest';
import type { Role } from '../../shared/protocol/messages';
import { instructorQueueName, roomAllKey, roomInstructorKey, roomUserKey } from '../../shared/protocol/routing';
import { decideResource, decideTopic, decideUser, type AuthLookups } from '../src/broker-auth/decide';

const ROOM = '11111111-1111-4111-8111-111111111111';
const OTHER_ROOM = '22222222-2222-4222-8222-222222222222';
const LEARNER = '33333333-3333-4333-8333-333333333333';
const INSTRUCTOR = '44444444-4444-4444-8444-444444444444';

const members: Record<string, Role> = { [`${ROOM}/${LEARNER}`]: 'learner', [`${ROOM}/${INSTRUCTOR}`]: 'instructor' };
const lookups: AuthLookups = {
  checkBrokerToken: async (u, p) => u === LEARNER && p === 'good',
  roleOf: async (r, u) => members[`${r}/${u}`] ?? null,
};
const topic = (username: string, routing_key: string, permission = 'read') =>
  decideTopic({ username, vhost: '/', name: 'amq.topic', permission, routing_key }, lookups);
const resource = (username: string, resource: string, name: string, permission: string) =>
  decideResource({ username, vhost: '/', resource, name, permission }, lookups);

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
    expect((await resource(LEARNER, 'queue', 'stomp-subscription-abc', 'configure')).allow).toBe(true);
  });
});
