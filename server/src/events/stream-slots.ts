/**
 * How many event streams each user has open, across every app server: one sorted set per user
 * in Redis (stream id -> lease end). A stream takes a slot before its response starts, renews
 * it while it runs, and gives it back when it ends; the slot of a stream whose server died
 * lapses with its lease, so a crash never locks a user out for longer than LEASE_MS.
 */
import { LuaScript, type Redis } from '../redis';

/** A slot not renewed for this long is free again (the hub renews every quarter of it). */
export const SLOT_LEASE_MS = 60_000;

const slotsKey = (userId: string): string => `rc:streams:${userId}`;

// KEYS: the user's set. ARGV: now, lease end, max, stream id. 1: taken; 0: the user is at max.
// Lapsed slots go first, in the same script, so two servers cannot both take the last one.
const ACQUIRE = new LuaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`, 1);

export class StreamSlots {
  constructor(
    private readonly redis: Redis,
    private readonly maxPerUser: number,
  ) {}

  get max(): number {
    return this.maxPerUser;
  }

  /** Takes a slot for `streamId`; false when the user already has `maxPerUser` streams open. */
  async acquire(userId: string, streamId: string): Promise<boolean> {
    const now = Date.now();
    return (await ACQUIRE.run(this.redis, [slotsKey(userId), now, now + SLOT_LEASE_MS, this.maxPerUser, streamId])) === 1;
  }

  /** Extends the lease of every slot given, in one round trip. */
  async renew(slots: readonly { userId: string; streamId: string }[]): Promise<void> {
    if (slots.length === 0) return;
    const until = Date.now() + SLOT_LEASE_MS;
    const batch = this.redis.pipeline();
    for (const { userId, streamId } of slots) {
      batch.zadd(slotsKey(userId), 'XX', until, streamId);
      batch.pexpireat(slotsKey(userId), until);
    }
    await batch.exec();
  }

  async release(userId: string, streamId: string): Promise<void> {
    await this.redis.zrem(slotsKey(userId), streamId);
  }
}
