/**
 * Builds every store and service from the configuration: used by the app server, the demo
 * seed and the tests, so all of them run the same code against the same real services.
 */
import type { Config } from '../../runtime/config';
import { BrokerConnection } from './broker/broker-connection';
import { createPool, type Pool } from './db/pool';
import type { Logger } from './logger';
import { MessageStore } from './messages/message-store';
import { SendMessage } from './messages/send-message';
import { createMetrics, type Metrics } from './metrics';
import { DeliveryLedger, type DeliveryLedgerOptions } from './delivery/delivery-ledger';
import { PUBLISH_QUEUE, PUBLISH_RETRY } from './delivery/outbox-relay';
import { jobCounts, JobQueue } from './work/job-queue';
import { PresenceStore } from './presence/presence-store';
import { PresenceService } from './presence/presence-service';
import { createRedis, type Redis } from './redis';
import { managementUrls } from './broker/management-api';
import { BrokerAdmin } from './revocation/broker-admin';
import { Revocations } from './revocation/revocations';
import { AttemptLimiter } from './auth/attempt-limiter';
import { MembershipMirror } from './rooms/membership-mirror';
import { RoomService } from './rooms/room-service';
import { RoomStore } from './rooms/room-store';
import { SessionStore } from './sessions/session-store';
import { UserStore } from './users/user-store';

export interface Services {
  pool: Pool;
  redis: Redis;
  broker: BrokerConnection;
  metrics: Metrics;
  users: UserStore;
  sessions: SessionStore;
  rooms: RoomStore;
  mirror: MembershipMirror;
  roomService: RoomService;
  messages: MessageStore;
  /** The publish job of every message: the outbox. */
  publishJobs: JobQueue;
  ledger: DeliveryLedger;
  sendMessage: SendMessage;
  /** Who is online, pushed to the room's pages when it changes. */
  presence: PresenceService;
  loginLimiter: AttemptLimiter;
  inviteLimiter: AttemptLimiter;
  revocations: Revocations;
  close(): Promise<void>;
}

/**
 * How long a publish may wait for its confirm before its job is left to the relays: under load,
 * or while a resource alarm blocks publishers, confirms come late, and publishing again
 * meanwhile only adds duplicates.
 */
const MAX_PUBLISH_HOLD_MS = 15_000;

/**
 * The send path: the store (group commit, the publish job in the same transaction), the ledger
 * that publishes after the commit and marks the job, and the send itself. `publisher` is the
 * broker; the benchmark's Socket.IO baseline (b') passes one that publishes nowhere.
 */
export function buildSendPath(
  config: Config,
  pool: Pool,
  publisher: DeliveryLedgerOptions['broker'],
  publishJobs: JobQueue,
  metrics: Metrics,
  logger: Logger,
): { messages: MessageStore; ledger: DeliveryLedger; sendMessage: SendMessage } {
  const messages = new MessageStore(pool, config.outboxRelayAfterMs);
  const ledger = new DeliveryLedger({
    broker: publisher,
    jobs: publishJobs,
    schedule: PUBLISH_RETRY,
    timeoutMs: config.publishTimeoutMs,
    maxHoldMs: MAX_PUBLISH_HOLD_MS,
    renewEveryMs: Math.max(20, Math.min(config.outboxRelayAfterMs / 3, 500)),
    metrics,
    logger,
  });
  return { messages, ledger, sendMessage: new SendMessage(messages, ledger, metrics) };
}

/**
 * AMQP heart-beat, in seconds. A node cut off by a partition sends no close: without heart-beats
 * the connection looked alive for the broker's 60 s default while every publish on it waited;
 * with 5 s, two missed beats end it and the server connects to another node.
 */
const AMQP_HEARTBEAT_S = 5;

/** AMQP URLs of every cluster node, for the server's own broker user. */
export function brokerUrls(config: Config): string[] {
  const { user, password, nodes } = config.rabbitmq;
  return nodes.map((n) => `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${n.host}:${n.amqpPort}?heartbeat=${AMQP_HEARTBEAT_S}`);
}

export function buildServices(config: Config, logger: Logger): Services {
  const pool = createPool(config, (err) => logger.warn({ err: err.message }, 'postgres client error'));
  const redis = createRedis(config, (err) => logger.warn({ err: err.message }, 'redis error'));
  const broker = new BrokerConnection({ urls: brokerUrls(config), logger, stuckAfterMs: config.publishTimeoutMs });
  const publishJobs = new JobQueue(pool, PUBLISH_QUEUE);
  const metrics = createMetrics(async () => (await publishJobs.stats()).pending, () => jobCounts(pool));
  const users = new UserStore(pool);
  const sessions = new SessionStore(redis, {
    sessionSeconds: config.sessionTtlSeconds,
    brokerTokenSeconds: config.brokerTokenTtlSeconds,
  });
  const rooms = new RoomStore(pool);
  const mirror = new MembershipMirror(redis);
  const presence = new PresenceService(new PresenceStore(redis), rooms, mirror, broker, logger);
  const revocations = new Revocations(pool, new BrokerAdmin(managementUrls(config), config.rabbitmq), metrics, logger);
  const roomService = new RoomService(rooms, mirror, broker, config.instructorQueueExpiresMs, presence, revocations, logger);
  const { messages, ledger, sendMessage } = buildSendPath(config, pool, broker, publishJobs, metrics, logger);
  const loginLimiter = AttemptLimiter.login(redis, config.loginLimits);
  const inviteLimiter = AttemptLimiter.invites(redis);
  return {
    pool,
    redis,
    broker,
    metrics,
    users,
    sessions,
    rooms,
    mirror,
    roomService,
    messages,
    publishJobs,
    ledger,
    sendMessage,
    presence,
    loginLimiter,
    inviteLimiter,
    revocations,
    async close() {
      await revocations.stop();
      presence.close();
      await ledger.close();
      await broker.close();
      await Promise.allSettled([pool.end(), redis.quit()]);
    },
  };
}
