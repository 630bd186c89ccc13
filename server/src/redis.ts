import { Redis } from 'ioredis';
import type { Config } from '../../runtime/config';

export type { Redis };

/** A Redis client that fails commands fast while disconnected instead of queueing them. */
export function createRedis(config: Config, onError: (err: Error) => void): Redis {
  const redis = new Redis(config.redis.url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    enableOfflineQueue: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    lazyConnect: false,
  });
  redis.on('error', onError);
  return redis;
}
