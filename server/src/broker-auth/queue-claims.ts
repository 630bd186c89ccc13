/**
 * Who declared each STOMP subscription queue, and whether it has been consumed yet (Redis).
 *
 * RabbitMQ tells broker-auth only the user and the queue name, and a STOMP client may choose
 * that name (`x-queue-name`, `/queue/…`). So the first user to configure (declare) a name owns
 * it: nobody else may declare, bind or consume it. And the queue may have two consumers over
 * its life, the two topic subscriptions of the page that named it (shared/protocol/routing.ts):
 * a later consumer is refused, so a queue never outlives its owner's connections (see
 * docs/decisions/0007-browser-queues.md).
 */
import { LuaScript, type Redis } from '../redis';

/**
 * How long a claim is remembered. It needs to cover one SUBSCRIBE (declare, consume, bind, and
 * STOMP's delete after a refusal): seconds. Once it lapses nobody gets the name again while
 * the queue exists (decide.ts refuses a fresh claim on an existing queue), so a short memory
 * is safe and keeps Redis small however often clients subscribe.
 */
export const QUEUE_CLAIM_SECONDS = 600;

const ownerKey = (queue: string): string => `rc:bq:owner:${queue}`;
const consumedKey = (queue: string): string => `rc:bq:consumed:${queue}`;
/** The Redis keys of a queue's claim (tests let a claim lapse by deleting them). */
export const claimKeys = (queue: string): string[] => [ownerKey(queue), consumedKey(queue)];

/** Deletes the claim only if `userId` still holds it. */
const RELEASE = new LuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1);
/** Counts a consume; the count lives as long as a claim. */
const COUNT_CONSUME = new LuaScript(`local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n`, 1);

export class QueueClaims {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = QUEUE_CLAIM_SECONDS,
  ) {}

  /** Claims `queue` for `userId` unless someone already holds it; returns the holder and whether this call made the claim. */
  async claim(queue: string, userId: string): Promise<{ owner: string; fresh: boolean }> {
    if ((await this.redis.set(ownerKey(queue), userId, 'EX', this.ttlSeconds, 'NX')) === 'OK') return { owner: userId, fresh: true };
    const owner = await this.redis.get(ownerKey(queue));
    // Held a moment ago; if the claim lapsed in between, the name is free again: claim it afresh.
    return owner === null ? this.claim(queue, userId) : { owner, fresh: false };
  }

  /** Gives up a claim just made (the queue turned out to exist already). */
  async release(queue: string, userId: string): Promise<void> {
    await RELEASE.run(this.redis, [ownerKey(queue), userId]);
  }

  async owner(queue: string): Promise<string | null> {
    return this.redis.get(ownerKey(queue));
  }

  /** How many consumes of `queue` have been asked for (within the claim's lifetime), this one included. */
  async countConsume(queue: string): Promise<number> {
    return Number(await COUNT_CONSUME.run(this.redis, [consumedKey(queue), this.ttlSeconds]));
  }
}
