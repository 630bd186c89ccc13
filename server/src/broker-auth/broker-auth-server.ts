/**
 * The HTTP service RabbitMQ's `rabbitmq_auth_backend_http` calls (POST, form-encoded), on a
 * loopback port the public proxy never forwards to. It reads Redis (tokens, the membership
 * mirror, subscription queue claims), so a decision costs one or two Redis round trips; the
 * consume of a subscription queue also reads the queue's properties from the management API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../../../runtime/config';
import { createLogger, type Logger } from '../logger';
import { checkDependencies } from '../dependencies';
import { createRedis } from '../redis';
import { MembershipMirror } from '../rooms/membership-mirror';
import { SessionStore } from '../sessions/session-store';
import { decideResource, decideTopic, decideUser, decideVhost, type AuthLookups, type Decision } from './decide';
import { QueueClaims } from './queue-claims';
import { QueueShapeLookup } from './queue-shape';

type Query = Record<string, string | undefined>;

export interface BrokerAuthServer {
  url: string;
  logger: Logger;
  close(): Promise<void>;
}

export async function startBrokerAuthServer(config: Config, port = config.brokerAuth.port): Promise<BrokerAuthServer> {
  const logger = createLogger(config, 'broker-auth');
  const redis = createRedis(config, (err) => logger.warn({ err: err.message }, 'redis error'));
  await checkDependencies(config, { redis }).catch((err: unknown) => {
    redis.disconnect();
    throw err;
  });
  const sessions = new SessionStore(redis, {
    sessionSeconds: config.sessionTtlSeconds,
    brokerTokenSeconds: config.brokerTokenTtlSeconds,
  });
  const mirror = new MembershipMirror(redis);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const queueLookupSeconds = new Histogram({
    name: 'roomcast_broker_auth_queue_lookup_seconds',
    help: "Time to read a subscription queue's properties from the management API.",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers: [registry],
  });
  const claims = new QueueClaims(redis);
  const shapes = new QueueShapeLookup(config);
  const lookups: AuthLookups = {
    checkBrokerToken: (u, p) => sessions.checkBrokerToken(u, p),
    roleOf: (r, u) => mirror.role(r, u),
    claimQueue: (q, u) => claims.claim(q, u),
    releaseQueue: (q, u) => claims.release(q, u),
    queueOwner: (q) => claims.owner(q),
    countConsume: (q) => claims.countConsume(q),
    queueShape: async (q) => {
      const endTimer = queueLookupSeconds.startTimer();
      try {
        return await shapes.get(q);
      } finally {
        endTimer();
      }
    },
  };

  const decisions = new Counter({
    name: 'roomcast_broker_auth_decisions_total',
    help: 'Answers given to RabbitMQ, by question and decision.',
    labelNames: ['question', 'decision'],
    registers: [registry],
  });
  // A broker waits for every answer before the client's frame goes on: this is the latency a
  // subscription pays per question, and what a reconnect storm queues on.
  const answerSeconds = new Histogram({
    name: 'roomcast_broker_auth_answer_seconds',
    help: 'Time from a question received to its answer sent, by question.',
    labelNames: ['question'],
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [registry],
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '8kb' }));

  const answer = (question: string, decide: (q: Query) => Promise<Decision> | Decision) =>
    async (req: express.Request, res: express.Response): Promise<void> => {
      const q = (req.body ?? {}) as Query;
      const endTimer = answerSeconds.startTimer({ question });
      let decision: Decision;
      try {
        decision = await decide(q);
      } catch (err) {
        // Fail closed: an unanswerable question (Redis down) is a refusal, never an allow.
        logger.warn({ question, err: (err as Error).message }, 'auth lookup failed; denying');
        decision = { allow: false, reason: 'lookup failed' };
      }
      decisions.inc({ question, decision: decision.allow ? 'allow' : 'deny' });
      if (!decision.allow) {
        logger.info({ question, user: q.username, name: q.name, key: q.routing_key, permission: q.permission, reason: decision.reason }, 'denied');
      }
      res.type('text/plain').send(decision.allow ? 'allow' : 'deny');
      endTimer();
    };

  app.post('/auth/user', answer('user', (q) => decideUser(q, lookups)));
  app.post('/auth/vhost', answer('vhost', (q) => decideVhost(q)));
  app.post('/auth/resource', answer('resource', (q) => decideResource(q, lookups)));
  app.post('/auth/topic', answer('topic', (q) => decideTopic(q, lookups)));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.use((_req: express.Request, res: express.Response) => {
    res.status(404).type('text/plain').send('deny');
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, config.brokerAuth.host, resolve);
  });
  const url = `http://${config.brokerAuth.host}:${(server.address() as AddressInfo).port}`;
  logger.info({ url }, 'broker-auth listening');
  return {
    url,
    logger,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await redis.quit().catch(() => undefined);
    },
  };
}
