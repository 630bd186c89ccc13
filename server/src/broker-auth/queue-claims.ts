/**
 * Who declared each STOMP subscription queue, and whether it has been consumed yet (Redis).
 *
 * RabbitMQ tells broker-auth only the user and the queue name, and a STOMP client may choose
 * that name (`x-queue-name`, `/queue/…`). So the first user to configure (declare) a name owns
 * it: nobody else may declare, bind or consume it. And the queue may be consumed once, by the
 * SUBSCRIBE that declared it: a later consumer, even its owner on another connection, is
 * refused, so a queue never outlives the connection that subscribed (see
 * docs/decisions/0007-browser-queues.md).
 */
import type { Redis } from '../redis';

/**
 * How long a claim is remembered. A claim must outlive its queue, or another user could claim
 * the name of a live queue; a subscription queue lives as long as its connection, and browser
 * connections last hours, not days.
 */
export const QUEUE_CLAIM_SECONDS = 7 * 24 * 3600;

const ownerKey = (queue: string): string => `rc:bq:owner:${queue}`;
const consumedKey = (queue: string): string => `rc:bq:consumed:${queue}`;

export class QueueClaims {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = QUEUE_CLAIM_SECONDS,
  ) {}

  /** Claims `queue` for `userId` unless someone already holds it; returns the holder. */
  async claim(queue: string, userId: string): Promise<string> {
    if ((await this.redis.set(ownerKey(queue), userId, 'EX', this.ttlSeconds, 'NX')) === 'OK') return userId;
    // Held already; if the claim expired in between, the name is free again: claim it afresh.
    return (await this.redis.get(ownerKey(queue))) ?? this.claim(queue, userId);
  }

  async owner(queue: string): Promise<string | null> {
    return this.redis.get(ownerKey(queue));
  }

  /** True only the first time it is asked for `queue`. */
  async firstConsume(queue: string): Promise<boolean> {
    return (await this.redis.set(consumedKey(queue), '1', 'EX', this.ttlSeconds, 'NX')) === 'OK';
  }
}
