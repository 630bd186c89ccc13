import { describe, expect, it } from 'vitest';
import { createPool } from '../src/db/pool';
import { checkDependencies, DependencyError } from '../src/dependencies';
import { createRedis } from '../src/redis';
import { testConfig } from '../../testkit/test-config';

/** Port 1 on loopback: nothing listens there, so every connect is refused at once. */
const NOWHERE = '127.0.0.1:1';

describe('the start-up check of Postgres and Redis', () => {
  it('passes with the services the configuration names', async () => {
    const config = testConfig();
    const pool = createPool(config, () => undefined);
    const redis = createRedis(config, () => undefined);
    try {
      await expect(checkDependencies(config, { pool, redis }, 5000)).resolves.toBeUndefined();
    } finally {
      await pool.end();
      redis.disconnect();
    }
  });

  it('names the setting and the host of a Postgres that does not answer, after the wait it was given', async () => {
    const config = testConfig({ ROOMCAST_DATABASE_URL: `postgres://roomcast:pw@${NOWHERE}/roomcast` });
    const pool = createPool(config, () => undefined);
    const started = Date.now();
    try {
      const err = await checkDependencies(config, { pool }, 1500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DependencyError);
      expect((err as DependencyError).code).toBe('dependency_unreachable');
      expect((err as Error).message).toMatch(/^cannot reach Postgres at 127\.0\.0\.1:1 \(ROOMCAST_DATABASE_URL\) after 1\.5 s: .*ECONNREFUSED/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    } finally {
      await pool.end();
    }
  });

  it('names the setting and the host of a Redis that does not answer', async () => {
    const config = testConfig({ ROOMCAST_REDIS_URL: `redis://${NOWHERE}` });
    const redis = createRedis(config, () => undefined);
    try {
      await expect(checkDependencies(config, { redis }, 1000)).rejects.toThrow(/^cannot reach Redis at 127\.0\.0\.1:1 \(ROOMCAST_REDIS_URL\) after 1 s/);
    } finally {
      redis.disconnect();
    }
  });
});
