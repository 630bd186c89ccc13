/**
 * Room lifecycle across the three stores. Order matters for "nothing half-written": an
 * instructor's broker queue is declared before the membership is committed (an orphan queue
 * from a failed commit simply expires), and the Redis mirror is written after the commit
 * (a failed mirror write is repaired by retrying the idempotent join or at server start).
 */
import type { Role } from '../../../shared/protocol/messages';
import { exchangeDestination, queueDestination, roomAllKey, roomUserKey } from '../../../shared/protocol/routing';
import type { RoomSubscriptions } from '../../../shared/protocol/messages';
import { deleteInstructorQueue, ensureInstructorQueue } from '../broker/instructor-queue';
import type { BrokerConnection } from '../broker/broker-connection';
import { ForbiddenError, NotFoundError } from '../errors';
import type { Logger } from '../logger';
import type { PresenceService } from '../presence/presence-service';
import type { RevocationReason, Revocations } from '../revocation/revocations';
import type { Session } from '../sessions/session-store';
import type { MembershipMirror } from './membership-mirror';
import { newRoomId, type Room, type RoomStore } from './room-store';

const removedError = (): ForbiddenError => new ForbiddenError('removed_from_room', 'an instructor removed you from this room');

export class RoomService {
  constructor(
    private readonly rooms: RoomStore,
    private readonly mirror: MembershipMirror,
    private readonly broker: BrokerConnection,
    private readonly queueExpiresMs: number,
    private readonly presence: Pick<PresenceService, 'leave'>,
    private readonly revocations: Revocations,
    private readonly logger: Logger,
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
    // Checked first so a removed instructor's refused join declares no queue; addMember checks again atomically.
    if (await this.rooms.wasRemoved(room.id, user.userId)) throw removedError();
    if (user.role === 'instructor') await ensureInstructorQueue(this.broker, room.id, user.userId, this.queueExpiresMs);
    const role = await this.rooms.addMember(room.id, user.userId, user.role);
    if (!role) throw removedError();
    await this.mirror.add(room.id, user.userId, role);
    return { ...room, role };
  }

  /**
   * An instructor of the room ends another member's membership for good: the invite code no
   * longer lets it back in. Not its own (that is `leave`) and not the creator's, so instructors
   * a creator invited cannot take the room from it.
   */
  async removeMember(actor: Session, roomId: string, memberId: string): Promise<void> {
    const { room, role } = await this.requireMember(roomId, actor.userId);
    if (role !== 'instructor') throw new ForbiddenError('forbidden', "only the room's instructors can remove members");
    if (memberId === actor.userId) throw new ForbiddenError('cannot_remove_member', 'to leave the room yourself, use POST /api/rooms/:id/leave');
    if (memberId === room.createdBy) throw new ForbiddenError('cannot_remove_member', "the room's creator cannot be removed");
    if (!(await this.endMembership(roomId, memberId, 'removed_from_room', actor.userId))) {
      throw new NotFoundError('not_found', 'no such member in this room');
    }
  }

  /** The caller ends its own membership; the room's creator cannot, or the room could be left without an instructor. */
  async leave(user: Session, roomId: string): Promise<void> {
    const room = await this.rooms.get(roomId);
    if (room?.createdBy === user.userId) throw new ForbiddenError('creator_cannot_leave', "the room's creator cannot leave it");
    if (await this.endMembership(roomId, user.userId, 'left_room')) return;
    await this.requireMember(roomId, user.userId); // throws the right 404 or 403
  }

  /**
   * Postgres first (the record), then the revocation request, then the Redis mirror that
   * broker-auth reads, then presence. Returns false when the user was a member neither in
   * Postgres nor in the mirror. A retry after a failure half-way finds the membership gone from
   * Postgres but still in the mirror, and finishes the job.
   */
  private async endMembership(roomId: string, userId: string, reason: RevocationReason, removedBy?: string): Promise<boolean> {
    const role = await this.rooms.removeMember(roomId, userId, removedBy);
    if (!role && !(await this.mirror.role(roomId, userId))) return false;
    await this.revocations.request(userId, reason);
    await this.mirror.remove(roomId, userId);
    await this.presence.leave(roomId, userId);
    if (role === 'instructor') {
      // Its queue would go on filling for a day and nobody may read it any more. Best effort:
      // broker-auth already refuses it to the former instructor, and it expires unused.
      await deleteInstructorQueue(this.broker, roomId, userId).catch((err: unknown) =>
        this.logger.warn({ roomId, userId, err: (err as Error).message }, 'could not delete a former instructor queue; it expires unused'),
      );
    }
    return true;
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
