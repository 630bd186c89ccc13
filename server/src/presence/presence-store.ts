/**
 * Who is online in a room, kept in Redis: one sorted set per room, member -> time of its last
 * heartbeat (ms). Presence ends by expiry, not only by an explicit leave, because a closed
 * laptop or a dead socket never says goodbye: a member counts while its last heartbeat is
 * younger than the window.
 *
 * The time is Redis's own (TIME inside the script), so several app servers with drifting
 * clocks agree on who is stale.
 */
import { LuaScript, type Redis } from '../redis';

const presenceKey = (roomId: string): string => `rc:presence:${roomId}`;

/** Milliseconds of a member's silence after which it no longer counts as online. */
export const DEFAULT_PRESENCE_WINDOW_MS = 30_000;

// Records the heartbeat, drops entries that went stale, and lets the whole set expire when
// nobody beats for a window (an abandoned room leaves nothing behind). Returns how many members
// came or went: a new one (absent, or present but stale: not online until now), plus those
// dropped as stale. With ARGV[3] = 'refresh' it records nothing for a member not online and
// returns -1: the caller checks membership before letting a newcomer in.
const BEAT = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
local arrived = (not last or tonumber(last) < now - window) and 1 or 0
if arrived == 1 and ARGV[3] == 'refresh' then return -1 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dropped = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
redis.call('PEXPIRE', KEYS[1], window)
return arrived + dropped
`, 1);

// Members whose last heartbeat is inside the window, most recent first.
const ONLINE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGE', KEYS[1], '+inf', now - tonumber(ARGV[1]), 'BYSCORE', 'REV')
`, 1);

export class PresenceStore {
  private readonly windowMs: number;

  /** `windowMs`: how long a heartbeat keeps a member online (tests pass a short one). */
  constructor(
    private readonly redis: Redis,
    options: { windowMs?: number } = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_PRESENCE_WINDOW_MS;
  }

  /** The member is here now. Resolves to whether who is online changed (they arrived, or others dropped out). */
  async beat(roomId: string, userId: string): Promise<boolean> {
    return ((await BEAT.run(this.redis, [presenceKey(roomId), userId, this.windowMs, 'beat'])) as number) > 0;
  }

  /** As `beat`, for a member already online only; null (nothing recorded) when it is not. */
  async refresh(roomId: string, userId: string): Promise<boolean | null> {
    const n = (await BEAT.run(this.redis, [presenceKey(roomId), userId, this.windowMs, 'refresh'])) as number;
    return n < 0 ? null : n > 0;
  }

  /** The member left on purpose (page closed): gone at once instead of after the window. Resolves to whether they were online. */
  async leave(roomId: string, userId: string): Promise<boolean> {
    return (await this.redis.zrem(presenceKey(roomId), userId)) > 0;
  }

  /** User ids of the members online in the room, most recently seen first. */
  async online(roomId: string): Promise<string[]> {
    return (await ONLINE.run(this.redis, [presenceKey(roomId), this.windowMs])) as string[];
  }
}
