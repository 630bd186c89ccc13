/**
 * Limits on guessing a secret, kept in Redis so every app server counts together: passwords at
 * login (`AttemptLimiter.login`), invite codes at join (`AttemptLimiter.invites`). Both are the
 * same game, a secret tried against an account from some address, so one mechanism serves both.
 * Requests that mail a link (`AttemptLimiter.mailedLinks`: a password reset, an address to
 * verify) use it too: each may send a mail, so the "account" is the mailbox written to (nobody
 * floods a mailbox through roomcast) and the address is the client's (nobody sprays the form);
 * a request is never taken back, so `succeeded` is never called.
 *
 * Three fixed windows, each a counter with an expiry:
 * - per (account, address), strict: one guesser gets a few tries at one account;
 * - per account, loose and short: guessing one account from many addresses is slowed, yet its
 *   owner is locked out for at most one short window, and not at all from an address it has
 *   logged in from before (remembered for KNOWN_ADDRESS_SECONDS);
 * - per address across accounts: spraying one password over many accounts.
 *
 * An attempt is counted before the password is checked, in the same script that checks the
 * limits, so a burst of concurrent guesses cannot all slip past the check before the first one
 * is counted. A successful login takes its own count back and clears the (account, address)
 * count; it does not clear the per-address count, or one valid account would reset an
 * attacker's spraying budget, nor the per-account one, which expires within a minute anyway.
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { Config } from '../../../runtime/config';
import { LuaScript, type Redis } from '../redis';

export type LoginLimit = 'account_address' | 'account' | 'address';

/**
 * Failed joins (unknown invite codes). An invite code has about 40 bits: guessing one takes
 * billions of tries, so these bound a guesser to a few hundred a day per account and address
 * while a person who mistypes a code a few times is never stopped.
 */
export const INVITE_LIMITS: Config['loginLimits'] = {
  perAccountAddress: { maxFailures: 10, windowSeconds: 15 * 60 },
  perAccount: { maxFailures: 20, windowSeconds: 15 * 60 },
  perAddress: { maxFailures: 50, windowSeconds: 15 * 60 },
};

/**
 * Requests that mail a link. Per mailbox: a person who lost a mail asks again once or twice, more
 * in an hour is someone else. Per client address: high enough for a class behind one NAT that
 * all forgot their passwords at once. An unknown mailbox counts like a real one, so a 429
 * reveals nothing about which exist.
 */
export const MAILED_LINK_LIMITS: Config['loginLimits'] = {
  perAccountAddress: { maxFailures: 3, windowSeconds: 3600 },
  perAccount: { maxFailures: 3, windowSeconds: 3600 },
  perAddress: { maxFailures: 20, windowSeconds: 15 * 60 },
};

/** An address the account logged in from is exempt from the per-account limit this long. */
const KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600;

// KEYS: pair, account, address, known. ARGV: pairMax, pairWin, accountMax, accountWin, addressMax, addressWin.
// Returns {} when the attempt may go ahead (and was counted), else {limit, seconds to wait}.
const CHECK_AND_COUNT = new LuaScript(`
local function wait(key, max)
  if tonumber(redis.call('GET', key) or '0') < max then return 0 end
  local ttl = redis.call('TTL', key)
  if ttl < 1 then ttl = 1 end
  return ttl
end
local w = wait(KEYS[1], tonumber(ARGV[1]))
if w > 0 then return {'account_address', w} end
w = wait(KEYS[3], tonumber(ARGV[5]))
if w > 0 then return {'address', w} end
if redis.call('EXISTS', KEYS[4]) == 0 then
  w = wait(KEYS[2], tonumber(ARGV[3]))
  if w > 0 then return {'account', w} end
end
local windows = {ARGV[2], ARGV[4], ARGV[6]}
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], windows[i]) end
end
return {}
`, 4);

// KEYS: pair, account, address, known. ARGV: knownSeconds. Undoes the attempt's count.
const SUCCEEDED = new LuaScript(`
redis.call('DEL', KEYS[1])
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
redis.call('SET', KEYS[4], '1', 'EX', ARGV[1])
return 1
`, 4);

/**
 * The address as a limit key: IPv4 as is, IPv6 by its /64, since one IPv6 host is typically
 * given a whole /64 and could otherwise rotate through addresses for free.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(ip) || !ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

// Usernames are user input: hashed so a key never holds odd characters or grows with them.
const h = (s: string): string => createHash('sha256').update(s).digest('base64url').slice(0, 22);

export class AttemptLimiter {
  private constructor(
    private readonly redis: Redis,
    private readonly limits: Config['loginLimits'],
    /** Keeps each secret's counts apart in Redis. */
    private readonly secret: 'login' | 'invite' | 'link',
  ) {}

  /** Password guesses; the account is the username tried. */
  static login(redis: Redis, limits: Config['loginLimits']): AttemptLimiter {
    return new AttemptLimiter(redis, limits, 'login');
  }

  /** Invite code guesses; the account is the user id trying them. */
  static invites(redis: Redis): AttemptLimiter {
    return new AttemptLimiter(redis, INVITE_LIMITS, 'invite');
  }

  /** Requests that mail a link; the account is the mailbox written to. */
  static mailedLinks(redis: Redis): AttemptLimiter {
    return new AttemptLimiter(redis, MAILED_LINK_LIMITS, 'link');
  }

  private keys(username: string, ip: string): string[] {
    const account = h(username.toLowerCase());
    const address = h(addressKey(ip));
    const p = `rc:${this.secret}`;
    return [`${p}:pair:${account}:${address}`, `${p}:acct:${account}`, `${p}:addr:${address}`, `${p}:known:${account}:${address}`];
  }

  /** Counts the attempt, or says which limit refuses it and for how many seconds. */
  async attempt(username: string, ip: string): Promise<{ limit: LoginLimit; retryAfterSeconds: number } | null> {
    const { perAccountAddress: pair, perAccount: account, perAddress: address } = this.limits;
    const result = (await CHECK_AND_COUNT.run(this.redis, [
      ...this.keys(username, ip),
      pair.maxFailures,
      pair.windowSeconds,
      account.maxFailures,
      account.windowSeconds,
      address.maxFailures,
      address.windowSeconds,
    ])) as [LoginLimit, number] | [];
    return result.length === 0 ? null : { limit: result[0], retryAfterSeconds: result[1] };
  }

  /** The password was right: this attempt was no failure, and the address is now known. */
  async succeeded(username: string, ip: string): Promise<void> {
    await SUCCEEDED.run(this.redis, [...this.keys(username, ip), KNOWN_ADDRESS_SECONDS]);
  }
}
