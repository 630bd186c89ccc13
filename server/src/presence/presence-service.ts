/**
 * Presence that is pushed (issue 18): a join, a leave or a member dropping out of the window
 * changes who is online, and every page of the room hears it within moments instead of at its
 * next poll. The change is published to the room's exchange, not stored (presence is not
 * history): learners get the count on the room's key, instructors the list on theirs. Copies
 * expire after 15 s, so an absent instructor's durable queue does not fill with stale ones.
 *
 * Changes are coalesced per room for a moment, so 500 learners opening a room at once make a
 * few publishes, not 500; several app servers may each publish the same snapshot, which is
 * harmless: each carries its time, and a page keeps the newest.
 */
import type { OnlineMember, RoomPresence } from '../../../shared/protocol/presence';
import { roomAllKey, roomInstructorKey } from '../../../shared/protocol/routing';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Logger } from '../logger';
import type { MembershipMirror } from '../rooms/membership-mirror';
import type { RoomStore } from '../rooms/room-store';
import type { PresenceStore } from './presence-store';

/** Changes within this long of each other make one publish. */
const COALESCE_MS = 200;
/** A pushed snapshot is worth nothing after the next heartbeat window. */
const EXPIRES_MS = 15_000;

/** What a page receives on its subscription: a snapshot of the room's presence at `at` (ms since the epoch). */
export interface PresenceFrame {
  presence: RoomPresence & { roomId: string; at: number };
}

export class PresenceService {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly store: PresenceStore,
    private readonly rooms: Pick<RoomStore, 'members'>,
    private readonly mirror: Pick<MembershipMirror, 'role'>,
    private readonly broker: Pick<BrokerConnection, 'publish'>,
    private readonly logger: Logger,
  ) {}

  /** The caller has checked that the user is a member. */
  async beat(roomId: string, userId: string): Promise<void> {
    if (await this.store.beat(roomId, userId)) this.changed(roomId);
  }

  /**
   * A beat from a member already online, with the membership mirror (Redis, what broker-auth
   * lets members subscribe by) standing in for the database: nearly every beat is one of these,
   * and it then costs two Redis calls (the mirror, then one script) instead of two Postgres queries. Resolves to false,
   * recording nothing, when the user is not online or not in the mirror: the caller checks
   * membership in Postgres and calls `beat`. A member removed meanwhile is out of the mirror
   * before its presence is dropped (RoomService.endMembership), so this never brings it back.
   */
  async refresh(roomId: string, userId: string): Promise<boolean> {
    if ((await this.mirror.role(roomId, userId)) === null) return false;
    const changed = await this.store.refresh(roomId, userId);
    if (changed === null) return false;
    if (changed) this.changed(roomId);
    return true;
  }

  async leave(roomId: string, userId: string): Promise<void> {
    if (await this.store.leave(roomId, userId)) this.changed(roomId);
  }

  online(roomId: string): Promise<string[]> {
    return this.store.online(roomId);
  }

  /** Who is online, as this role may know it: the count for everyone, the list for instructors. */
  async snapshot(roomId: string, role: 'instructor' | 'learner'): Promise<RoomPresence> {
    const online = await this.store.online(roomId);
    if (role !== 'instructor') return { online: online.length };
    return { online: online.length, members: await this.named(roomId, online) };
  }

  /** Stops pending publishes (server shutdown). */
  close(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private changed(roomId: string): void {
    if (this.pending.has(roomId)) return;
    this.pending.set(
      roomId,
      setTimeout(() => {
        this.pending.delete(roomId);
        this.publish(roomId).catch((err: unknown) => this.logger.warn({ roomId, err: (err as Error).message }, 'could not push a presence change; pages catch up at their next heartbeat'));
      }, COALESCE_MS),
    );
  }

  private async publish(roomId: string): Promise<void> {
    const online = await this.store.online(roomId);
    const at = Date.now();
    const props = { contentType: 'application/json', persistent: false, expiration: String(EXPIRES_MS) };
    const frame = (presence: RoomPresence): Buffer => Buffer.from(JSON.stringify({ presence: { roomId, at, ...presence } } satisfies PresenceFrame));
    await Promise.all([
      this.broker.publish(roomAllKey(roomId), frame({ online: online.length }), props),
      this.broker.publish(roomInstructorKey(roomId), frame({ online: online.length, members: await this.named(roomId, online) }), props),
    ]);
  }

  private async named(roomId: string, online: string[]): Promise<OnlineMember[]> {
    const byId = new Map((await this.rooms.members(roomId)).map((m) => [m.userId, m]));
    return online.flatMap((id) => {
      const m = byId.get(id);
      return m ? [{ userId: m.userId, displayName: m.displayName, role: m.role }] : [];
    });
  }
}
