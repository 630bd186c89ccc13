/**
 * Login sessions and broker tokens, both in Redis with an expiry.
 *
 * Only SHA-256 digests of tokens are stored, so a Redis dump cannot be replayed as logins.
 * A broker token names the session it was issued under; the broker-auth service refuses it
 * once that session is gone, so logout revokes every broker token of the session at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Role } from '../../../shared/protocol/messages';
import type { Redis } from '../redis';

export interface Session {
  userId: string;
  username: string;
  displayName: string;
  role: Role;
}

interface BrokerTokenRecord {
  userId: string;
  session: string;
}

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');
const sessionKey = (hash: string): string => `rc:sess:${hash}`;
const brokerTokenKey = (hash: string): string => `rc:btok:${hash}`;
/** Every live session of a user (digest -> expiry in ms), so a password change can end them all. */
const userSessionsKey = (userId: string): string => `rc:usess:${userId}`;
const newToken = (): string => randomBytes(32).toString('base64url');

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttl: { sessionSeconds: number; brokerTokenSeconds: number },
  ) {}

  async create(session: Session): Promise<{ token: string; expiresAt: Date }> {
    const token = newToken();
    const hash = digest(token);
    const expiresAt = new Date(Date.now() + this.ttl.sessionSeconds * 1000);
    const index = userSessionsKey(session.userId);
    await this.redis
      .multi()
      .set(sessionKey(hash), JSON.stringify(session), 'EX', this.ttl.sessionSeconds)
      .zadd(index, expiresAt.getTime(), hash)
      // Entries of sessions that expired on their own go; the index lives as long as its newest session.
      .zremrangebyscore(index, '-inf', Date.now())
      .expire(index, this.ttl.sessionSeconds)
      .exec();
    return { token, expiresAt };
  }

  async get(token: string): Promise<Session | null> {
    const raw = await this.redis.get(sessionKey(digest(token)));
    return raw ? (JSON.parse(raw) as Session) : null;
  }

  /**
   * What names the session of `token` without being it (its digest): safe to store beside
   * something bound to the session, such as an event stream ticket.
   */
  refOf(token: string): string {
    return digest(token);
  }

  /** For each session reference (`refOf`), whether that session still exists: one round trip. */
  async alive(refs: readonly string[]): Promise<boolean[]> {
    if (refs.length === 0) return [];
    const batch = this.redis.pipeline();
    for (const ref of refs) batch.exists(sessionKey(ref));
    const results = (await batch.exec()) ?? [];
    return refs.map((_ref, i) => {
      const [err, n] = results[i] ?? [new Error('no reply'), 0];
      if (err) throw err;
      return n === 1;
    });
  }

  /** Ends the session; its broker tokens stop working with it. */
  async revoke(token: string): Promise<void> {
    await this.redis.del(sessionKey(digest(token)));
  }

  /** Ends every session of the user (and so every broker token issued under them). */
  async revokeAll(userId: string): Promise<number> {
    const index = userSessionsKey(userId);
    const hashes = await this.redis.zrange(index, '0', '-1');
    if (hashes.length === 0) return 0;
    await this.redis
      .multi()
      .del(...hashes.map(sessionKey))
      // Only what was read: a session created meanwhile (the fresh one after a password change) stays.
      .zrem(index, ...hashes)
      .exec();
    return hashes.length;
  }

  /** A short-lived STOMP passcode bound to this session. */
  async issueBrokerToken(sessionToken: string, userId: string, ttlSeconds = this.ttl.brokerTokenSeconds): Promise<{ passcode: string; expiresAt: Date }> {
    const passcode = newToken();
    const record: BrokerTokenRecord = { userId, session: digest(sessionToken) };
    await this.redis.set(brokerTokenKey(digest(passcode)), JSON.stringify(record), 'EX', ttlSeconds);
    return { passcode, expiresAt: new Date(Date.now() + ttlSeconds * 1000) };
  }

  /** True when the passcode is a live broker token of `userId` whose session still exists. */
  async checkBrokerToken(userId: string, passcode: string): Promise<boolean> {
    const raw = await this.redis.get(brokerTokenKey(digest(passcode)));
    if (!raw) return false;
    const record = JSON.parse(raw) as BrokerTokenRecord;
    if (record.userId !== userId) return false;
    return (await this.redis.exists(sessionKey(record.session))) === 1;
  }
}
