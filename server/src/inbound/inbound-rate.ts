/**
 * How many replies and commands one person may mail per hour (ROOMCAST_INBOUND_MAX_PER_HOUR),
 * over all their rooms and mailboxes, counted in Redis so every app server counts together.
 *
 * What is counted is distinct mails, not deliveries: each mail's key (its Message-ID, or its
 * content when it has none, with its address's row) joins a set for the hour. A mail the MTA
 * offers again, because our 250 was lost, because it was deferred while Postgres was away, or
 * because it was already posted, is found in the set and counts nothing more; the login limiter
 * this replaces counted each offer, so one unlucky mail could use up a person's hour.
 * A mail over the limit is not added, so when the MTA offers it again after the hour it counts then.
 */
import { LuaScript, type Redis } from '../redis';

const WINDOW_SECONDS = 3600;

// KEYS: the person's set for the window. ARGV: mail key, max, window seconds.
// Returns 0 when the mail may go ahead (now counted, or counted before), else the seconds to wait.
const COUNT = new LuaScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 0
`, 1);

export class InboundRate {
  constructor(
    private readonly redis: Redis,
    private readonly perHour: number,
  ) {}

  /** Counts the mail for the user unless it was counted already; resolves to the seconds to wait when over the limit, else null. */
  async count(userId: string, mailKey: string): Promise<number | null> {
    const key = `rc:inbound-rate:${userId}`;
    const wait = (await COUNT.run(this.redis, [key, mailKey, this.perHour, WINDOW_SECONDS])) as number;
    return wait === 0 ? null : wait;
  }
}
