/**
 * Rooms full of users for benchmarks, made fast: one password hash for everyone, memberships
 * inserted in bulk, sessions and broker tokens written straight to Redis through the same
 * stores the app server uses. Users are real rows; tokens are real tokens.
 */
import { randomBytes } from 'node:crypto';
import { instructorQueueName } from '../shared/protocol/routing';
import { hashPassword } from '../server/src/users/passwords';
import type { Services } from '../server/src/services';

export interface BenchMember {
  id: string;
  token: string;
  passcode: string;
}

export interface BenchRoom {
  id: string;
  instructor: BenchMember;
  learners: BenchMember[];
}

async function insertUsers(s: Services, prefix: string, role: 'instructor' | 'learner', n: number, hash: string): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${role[0]}${i}`);
  const { rows } = await s.pool.query<{ id: string }>(
    `INSERT INTO users (username, display_name, role, password_hash)
     SELECT u, u, $2, $3 FROM unnest($1::text[]) AS u RETURNING id`,
    [names, role, hash],
  );
  return rows.map((r) => r.id);
}

async function member(s: Services, id: string, role: 'instructor' | 'learner'): Promise<BenchMember> {
  const session = await s.sessions.create({ userId: id, username: id, displayName: id, role });
  const broker = await s.sessions.issueBrokerToken(session.token, id, 3600);
  return { id, token: session.token, passcode: broker.passcode };
}

export async function makeBenchRooms(s: Services, rooms: number, learnersPerRoom: number): Promise<BenchRoom[]> {
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const hash = await hashPassword(randomBytes(16).toString('hex'));
  const instructorIds = await insertUsers(s, prefix, 'instructor', rooms, hash);
  const learnerIds = await insertUsers(s, prefix, 'learner', rooms * learnersPerRoom, hash);
  const out: BenchRoom[] = [];
  for (let r = 0; r < rooms; r++) {
    const instructorId = instructorIds[r] as string;
    const instructor = await member(s, instructorId, 'instructor');
    const room = await s.roomService.create({ userId: instructorId, username: instructorId, displayName: instructorId, role: 'instructor' }, `${prefix}-room${r}`);
    const ids = learnerIds.slice(r * learnersPerRoom, (r + 1) * learnersPerRoom);
    await s.pool.query(`INSERT INTO memberships (room_id, user_id, role) SELECT $1, u, 'learner' FROM unnest($2::uuid[]) AS u`, [room.id, ids]);
    // Concurrent commands share one Redis connection and go out pipelined.
    await Promise.all(ids.map((id) => s.mirror.add(room.id, id, 'learner')));
    const learners = await Promise.all(ids.map((id) => member(s, id, 'learner')));
    out.push({ id: room.id, instructor, learners });
  }
  return out;
}

/**
 * Deletes the rooms' instructor queues. Each is a quorum queue with a member on every node; left
 * to their one-day expiry, a few benchmark runs would leave hundreds of them costing every later
 * run memory and CPU.
 */
export async function dropBenchQueues(s: Services, rooms: BenchRoom[]): Promise<void> {
  await s.broker.withChannel(async (ch) => {
    for (const room of rooms) await ch.deleteQueue(instructorQueueName(room.id, room.instructor.id));
  });
}
