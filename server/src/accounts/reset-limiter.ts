/**
 * Limits password-reset requests, which send mail: per address asked for, so nobody can flood
 * someone's mailbox through the form, and per client address, so nobody can spray the form with
 * many addresses. The same pattern as `AttemptLimiter` (auth/attempt-limiter.ts): fixed windows
 * in Redis shared by every app server, checked and counted in one script so a burst cannot slip
 * past, refused requests not counted, IPv6 by /64. Unlike a guess, a request is never taken back:
 * every one of them may send a mail.
 *
 * An unknown address counts exactly like a real one (the limiter never learns which exist), so
 * a 429 reveals nothing about the address either. The owner is not locked out by someone else's
 * requests: those went to the owner's mailbox, and the newest link in it works.
 */
import { createHash } from 'node:crypto';
import { addressKey } from '../auth/attempt-limiter';
import type { Redis } from '../redis';

export type ResetLimit = 'email' | 'address';

export interface Window {
  max: number;
  windowSeconds: number;
}

export const RESET_LIMITS: Record<ResetLimit, Window> = {
  // A person who lost a mail asks again once or twice; more than that in an hour is someone else.
  email: { max: 3, windowSeconds: 3600 },
  // High enough for a class behind one NAT address that all forgot their passwords at once.
  address: { max: 20, windowSeconds: 15 * 60 },
};

// KEYS: per email, per address. ARGV: emailMax, emailWindow, addressMax, addressWindow.
// Returns {} when the request may go ahead (and was counted), else {limit index, seconds to wait}.
const CHECK_AND_COUNT = `
for i = 1, 2 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 1 then ttl = 1 end
    return {i, ttl}
  end
end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2 * i]) end
end
return {}
`;

const ORDER: ResetLimit[] = ['email', 'address'];

// Addresses are user input: hashed so a key never holds odd characters or grows with them.
const h = (s: string): string => createHash('sha256').update(s).digest('base64url').slice(0, 22);

export class ResetLimiter {
  constructor(private readonly redis: Redis) {}

  /** Counts the request, or says which limit refuses it and for how many seconds. */
  async attempt(email: string, ip: string): Promise<{ limit: ResetLimit; retryAfterSeconds: number } | null> {
    const { email: perEmail, address: perAddress } = RESET_LIMITS;
    const result = (await this.redis.eval(
      CHECK_AND_COUNT,
      2,
      `rc:reset:email:${h(email.toLowerCase())}`,
      `rc:reset:addr:${h(addressKey(ip))}`,
      perEmail.max,
      perEmail.windowSeconds,
      perAddress.max,
      perAddress.windowSeconds,
    )) as [1 | 2, number] | [];
    if (result.length === 0) return null;
    return { limit: ORDER[result[0] - 1] as ResetLimit, retryAfterSeconds: result[1] };
  }
}
