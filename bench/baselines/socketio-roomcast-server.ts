/**
 * Baseline (b'): Socket.IO 4 with the Redis adapter, doing roomcast's per-message work (issue 17).
 * Set beside roomcast, it shows what roomcast's architecture costs (broker, STOMP, proxy);
 * set beside baseline (b), it shows what roomcast's guarantees cost. Runs as a bench worker; it
 * reads the configuration itself, like the app servers, so it uses their Postgres and Redis.
 *
 * For each `POST /api/rooms/:roomId/messages` it runs roomcast's app-server code (imported, not
 * copied) in roomcast's order:
 * - express.json (same options) and `jsonGuard`, behind `securityHeaders` and `requestLog`;
 * - the session lookup in Redis (`authenticate`);
 * - `parse(sendMessageRequest)` and the instructor-only check on the kind;
 * - the app server's send path (`buildSendPath`): the size check, the group commit
 *   (`roomcast_send_batch`: the room row lock, idempotency, the membership check, the seq, the
 *   message row and its publish job, the outbox row), then the ledger's batched UPDATE that
 *   marks the publish jobs done.
 * Then it emits the stored message (the JSON roomcast publishes) to the Socket.IO room of its
 * routing key and answers 201 `{ id, seq, message }`.
 *
 * What it does not do:
 * - no broker publish and no publisher confirm. The ledger's publisher returns at once, because
 *   Socket.IO has no confirm, so jobs are marked done about 20 ms later, as after a quick confirm.
 *   No job is left pending, so the outbox relays of roomcast's running app servers never claim
 *   one: each is leased to this process for `outboxRelayAfterMs` and done long before the lease
 *   ends. Message rows and done job rows stay, as after a roomcast run; those relays prune done
 *   jobs after an hour.
 * - no outbox relay of its own, and no proxy: clients and posters connect here directly.
 * - no STOMP, and no broker-auth for subscribers: a client joins any room, as in baseline (b).
 * - none of the other routers that roomcast's request walks past before message-routes.ts.
 * - no `action` messages: roomcast sends them through `Interactions`, which needs a
 *   `RoomService`, and building one opens a broker connection. They are refused.
 * - no request log lines by default: the level is warn unless ROOMCAST_LOG_LEVEL says otherwise.
 *   Roomcast's app servers log each request at their own level (info unless set).
 * One thing it does more: the ledger serializes each message for a publish that goes nowhere,
 * and Socket.IO then encodes its own packet.
 *
 * The route reads the request with message-routes.ts's `sendOf`; `messageRoutes` itself cannot
 * be mounted without a `RoomService` (see above).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import express from 'express';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { loadConfig } from '../../runtime/config';
import type { SendMessageResponse } from '../../shared/protocol/messages';
import { roomAllKey, routingKeyOf } from '../../shared/protocol/routing';
import { MAX_REQUEST_BYTES } from '../../server/src/app';
import { createPool } from '../../server/src/db/pool';
import { PUBLISH_QUEUE } from '../../server/src/delivery/outbox-relay';
import { ValidationError } from '../../server/src/errors';
import { authenticate } from '../../server/src/http/authenticate';
import { errorHandler, notFound } from '../../server/src/http/error-handler';
import { jsonGuard, refuseInvalidUtf8 } from '../../server/src/http/json-guard';
import { requestLog } from '../../server/src/http/request-log';
import { securityHeaders } from '../../server/src/http/security-headers';
import { createLogger } from '../../server/src/logger';
import { createMetrics } from '../../server/src/metrics';
import { createRedis } from '../../server/src/redis';
import { sendOf } from '../../server/src/routes/message-routes';
import { buildSendPath } from '../../server/src/services';
import { SessionStore } from '../../server/src/sessions/session-store';
import { JobQueue } from '../../server/src/work/job-queue';
import { workerMain } from '../../testkit/workers';

/** None: the worker reads the environment through `loadConfig`, like sse-app.ts. */
export type SocketIoRoomcastParams = Record<string, never>;

export interface SocketIoRoomcastResult {
  /** Messages stored and emitted (a replayed send is answered, not emitted again). */
  emitted: number;
}

workerMain<SocketIoRoomcastParams, SocketIoRoomcastResult>(async (_params, stopped, ready) => {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  const logger = createLogger(config, 'socketio-roomcast');
  const pool = createPool(config, (err) => logger.warn({ err: err.message }, 'postgres client error'));
  const redis = createRedis(config, (err) => logger.warn({ err: err.message }, 'redis error'));
  const sessions = new SessionStore(redis, { sessionSeconds: config.sessionTtlSeconds, brokerTokenSeconds: config.brokerTokenTtlSeconds });
  const publishJobs = new JobQueue(pool, PUBLISH_QUEUE);
  const metrics = createMetrics(async () => (await publishJobs.stats()).pending);
  // Where roomcast publishes to RabbitMQ. Socket.IO has no confirm: the route emits, and this returns at once.
  const nowhere = { publish: async () => undefined };
  const { ledger, sendMessage } = buildSendPath(config, pool, nowhere, publishJobs, metrics, logger);
  // The adapter's own pair, as in socketio-server.ts: a subscribed connection can send nothing else.
  const pub = new Redis(config.redis.url);
  const sub = pub.duplicate();
  let emitted = 0;

  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders());
  app.use(requestLog(logger, metrics));
  app.use(express.json({ limit: MAX_REQUEST_BYTES, strict: true, verify: refuseInvalidUtf8 }));
  app.use(jsonGuard());
  app.use('/api/rooms/:roomId/messages', authenticate(sessions));
  app.post('/api/rooms/:roomId/messages', async (req, res) => {
    const stop = metrics.sendLatency.startTimer();
    const { roomId, body, session } = sendOf(req, res);
    if (body.kind === 'action') throw new ValidationError('this baseline sends no actions (interactions need the room service)');
    const { message, replayed } = await sendMessage.send(roomId, session.userId, body);
    if (replayed) {
      res.set('Idempotent-Replayed', 'true');
    } else {
      io.to(routingKeyOf(message)).emit('message', message);
      emitted++;
    }
    res.status(201).json({ id: message.id, seq: message.seq, message } satisfies SendMessageResponse);
    stop();
  });
  app.use(notFound);
  app.use(errorHandler(logger));

  const server = http.createServer(app);
  const io = new Server(server, { adapter: createAdapter(pub, sub), transports: ['websocket'] });
  io.on('connection', (socket) => {
    // A client names the room; it gets what a learner subscribed to the room's `all` key gets.
    socket.on('join', (room: string, ack: () => void) => {
      void socket.join(roomAllKey(room));
      ack();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ready((server.address() as AddressInfo).port);
  await stopped;
  await io.close();
  // The last publish jobs are marked done before the pool goes.
  await ledger.close();
  pub.disconnect();
  sub.disconnect();
  await Promise.allSettled([pool.end(), redis.quit()]);
  return { emitted };
});
