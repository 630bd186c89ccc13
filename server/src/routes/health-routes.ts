import { Router } from 'express';
import { healthSchema, readinessSchema, type Readiness } from '../../../shared/protocol/operations';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Pool } from '../db/pool';
import { describeRoute } from '../http/api-spec';
import type { Metrics } from '../metrics';
import type { Redis } from '../redis';

const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms))]);

export function healthRoutes(deps: { pool: Pool; redis: Redis; broker: BrokerConnection; metrics: Metrics }): Router {
  const router = Router();

  describeRoute({
    operationId: 'health',
    method: 'get',
    path: '/healthz',
    tag: 'operations',
    summary: 'Liveness',
    auth: 'none',
    responses: { 200: healthSchema },
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  /** Ready when Postgres, Redis and the broker all answer; 503 names what is down. */
  describeRoute({
    operationId: 'ready',
    method: 'get',
    path: '/readyz',
    tag: 'operations',
    summary: 'Readiness: Postgres, Redis and the broker',
    auth: 'none',
    responses: { 200: { description: 'Everything answers', json: readinessSchema }, 503: { description: 'Something is down: `checks` says what', json: readinessSchema } },
  });
  router.get('/readyz', async (_req, res) => {
    const [postgres, redis] = await Promise.allSettled([
      within(deps.pool.query('SELECT 1'), 1000),
      within(deps.redis.ping(), 1000),
    ]);
    const checks: Readiness['checks'] = {
      postgres: postgres.status === 'fulfilled' ? 'up' : 'down',
      redis: redis.status === 'fulfilled' ? 'up' : 'down',
      broker: deps.broker.status === 'connected' ? 'up' : 'down',
    };
    const ready = Object.values(checks).every((c) => c === 'up');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks } satisfies Readiness);
  });

  describeRoute({
    operationId: 'metrics',
    method: 'get',
    path: '/metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    auth: 'none',
    responses: { 200: { description: 'The Prometheus text format', media: 'text/plain' } },
  });
  router.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  return router;
}
