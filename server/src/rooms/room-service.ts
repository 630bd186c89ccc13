/**
 * Room lifecycle across the three stores. Order matters for "nothing half-written": an
 * instructor's broker queue is declared before the membership is committed (an orphan queue
 * from a failed commit simply expires), and the Redis mirror is written after the commit
 * (a failed mirror write is repaired by retrying the idempotent join or at server start).
 */
import type { Role } from '../../../shared/protocol/messages';
import { exchangeDestination, queueDestination, roomAllKey, roomUserKey } from '../../../shared/protocol/routing';
import type { RoomSubscriptions } from '../../../shared/protocol/messages';
import { ensureInstructorQueue } from '../broker/instructor-queue';
import type { BrokerConnection } from '../broker/broker-connection';
import { ForbiddenError, NotFoundError } from '../errors';
import type { Session } from '../sessions/session-store';
import type { MembershipMirror } from './membership-mirror';
import { newRoomId, type Room, type RoomStore } from './room-store';

export class RoomService {
  constructor(
    private readonly rooms: RoomStore,
    private readonly mirror: MembershipMirror,
    private readonly broker: BrokerConnection,
    private readonly queueExpiresMs: number,
  ) {}

  async create(user: Session, name: string): Promise<Room> {
    if (user.role !== 'instructor') throw new ForbiddenError('forbidden', 'only instructors can create rooms');
    const id = newRoomId();
    await ensureInstructorQueue(this.broker, id, user.userId, this.queueExpiresMs);
    const room = await this.rooms.create({ id, name, createdBy: user.userId });
    await this.mirror.add(room.id, user.userId, 'instructor');
    return room;
  }

  async join(user: Session, inviteCode: string): Promise<Room & { role: Role }> {
    const room = await this.rooms.byInviteCode(inviteCode.trim().toUpperCase());
    if (!room) throw new NotFoundError('invite_not_found', 'no room has this invite code');
    if (user.role === 'instructor') await ensureInstructorQueue(this.broker, room.id, user.userId, this.queueExpiresMs);
    const role = await this.rooms.addMember(room.id, user.userId, user.role);
    await this.mirror.add(room.id, user.userId, role);
    return { ...room, role };
  }

  /** The caller's role in the room; 404 for an unknown room, 403 for a non-member. */
  async requireMember(roomId: string, userId: string): Promise<{ room: Room; role: Role }> {
    const [room, role] = await Promise.all([this.rooms.get(roomId), this.rooms.roleOf(roomId, userId)]);
    if (!room) throw new NotFoundError('room_not_found', 'no such room');
    if (!role) throw new ForbiddenError('not_a_member', 'you are not a member of this room');
    return { room, role };
  }

  /**
   * What the member may subscribe to. For an instructor this also (re)declares the durable queue,
   * which RabbitMQ deletes after a day unused.
   */
  async subscriptions(roomId: string, userId: string): Promise<RoomSubscriptions> {
    const { role } = await this.requireMember(roomId, userId);
    if (role !== 'instructor') {
      const topics = [exchangeDestination(roomAllKey(roomId)), exchangeDestination(roomUserKey(roomId, userId))];
      return { roomId, role, topics, instructorQueue: null };
    }
    // The instructor queue is bound to every key of the room: topics on top would only duplicate it.
    const name = await ensureInstructorQueue(this.broker, roomId, userId, this.queueExpiresMs);
    return { roomId, role, topics: [], instructorQueue: { name, destination: queueDestination(name) } };
  }
}
