/**
 * The composition root: builds every store and service from the configuration, wires the
 * Express routes, and owns start-up and shutdown. Tests call `startAppServer` with port 0.
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import { repoRoot, type Config } from '../../runtime/config';
import type { BrokerConnection } from './broker/broker-connection';
import { migrate } from './db/migrate';
import { checkDependencies } from './dependencies';
import { errorHandler, notFound } from './http/error-handler';
import { jsonGuard, refuseInvalidUtf8 } from './http/json-guard';
import { openApiRoutes } from './http/openapi';
import { requestLog } from './http/request-log';
import { pageHeaders, securityHeaders } from './http/security-headers';
import { createLogger, type Logger } from './logger';
import { createOutboxRelay } from './delivery/outbox-relay';
import { Accounts } from './accounts/accounts';
import { accountLinkRoutes, accountRoutes } from './routes/account-routes';
import { InboundMail } from './inbound';
import { MailChannel } from './mail/mail-channel';
import { inboundMailRoutes } from './routes/inbound-mail-routes';
import { mailLinkRoutes, mailRoutes } from './routes/mail-routes';
import { webhookRoutes } from './routes/webhook-routes';
import { campaignRoutes } from './routes/campaign-routes';
import { Campaigns } from './campaigns';
import { WebhookChannel } from './webhooks';
import { EventFeed } from './events/event-feed';
import { EventStore } from './events/event-store';
import { RoomEventListener } from './events/room-event-listener';
import { eventRoutes } from './routes/event-routes';
import { RoomTails } from './events/room-tails';
import { StreamHub } from './events/stream-hub';
import { StreamSlots } from './events/stream-slots';
import { StreamTickets } from './events/stream-tickets';
import { eventStreamRoutes } from './routes/event-stream-routes';
import type { Worker } from './work/worker';
import { authRoutes } from './routes/auth-routes';
import { healthRoutes } from './routes/health-routes';
import { messageRoutes } from './routes/message-routes';
import { Interactions } from './interactions';
import { presenceRoutes } from './routes/presence-routes';
import { roomRoutes } from './routes/room-routes';
import { buildServices, type Services } from './services';

/** Request bodies above this are refused before parsing (the message body limit is 16 KiB). */
export const MAX_REQUEST_BYTES = '64kb';

export interface AppServer {
  url: string;
  port: number;
  /** The Express app (tests walk the routes it mounts). */
  app: express.Express;
  logger: Logger;
  relay: Worker<Record<string, unknown>>;
  mail: MailChannel;
  /** Replies, commands and bounces by mail: the LMTP listener (docs/inbound-mail.md). */
  inbound: InboundMail;
  /** Webhook endpoints and their delivery (docs/webhooks.md). */
  webhooks: WebhookChannel;
  /** Bulk announcements by e-mail and their runner (docs/campaigns.md). */
  campaigns: Campaigns;
  /** Room events: reading them (store, feed) and hearing that a room has new ones (listener). */
  events: { store: EventStore; feed: EventFeed; listener: RoomEventListener };
  /** The event streams (SSE) open on this server. */
  streams: StreamHub;
  broker: BrokerConnection;
  services: Services;
  close(): Promise<void>;
}

export interface AppServerOptions {
  /** Port to listen on; 0 picks a free one. Defaults to config.app.port. */
  port?: number;
  /** Run the outbox relay in this process (default true). */
  relay?: boolean;
  /** Run the mail workers (sender, notifier, digests, reminders, password-reset requests) in this process (default true). */
  mail?: boolean;
  /**
   * Listen for inbound mail over LMTP on `config.inbound.lmtpPort` (default false: the port is
   * fixed, as the MTA is configured with it, so only one server per port may; main.ts turns it on).
   */
  inboundMail?: boolean;
  /** Deliver webhooks from this process (default true); the webhook API works either way. */
  webhooks?: boolean;
  /** Send campaign mail from this process (default true); the campaign API works either way. */
  campaigns?: boolean;
  /** Folder of the built pages; defaults to web/dist (tests serve a folder of their own). */
  webDir?: string;
}

export async function startAppServer(config: Config, options: AppServerOptions = {}): Promise<AppServer> {
  const logger = createLogger(config, 'app');
  const services = buildServices(config, logger);
  const { pool, redis, broker, metrics, users, sessions, rooms, roomService, messages, sendMessage, presence } = services;

  await checkDependencies(config, { pool, redis });
  await migrate(pool);
  logger.info({ memberships: await services.mirror.rebuild(pool) }, 'membership mirror rebuilt');

  const mail = await MailChannel.create({ pool, config, presence, metrics, logger });
  const eventStore = new EventStore(pool);
  const events = { store: eventStore, feed: new EventFeed(eventStore), listener: new RoomEventListener(config.postgres.url, logger) };
  await events.listener.start();
  const streamSlots = new StreamSlots(redis, config.streams.maxPerUser);
  const streams = new StreamHub({ sessions, slots: streamSlots, metrics, logger });
  const tails = new RoomTails({ store: events.store, listener: events.listener, logger });
  events.listener.followAll(() => mail.wakeNotifier());
  const webhooks = new WebhookChannel({ pool, config, events: events.store, listener: events.listener, mail, metrics, logger });
  const campaigns = new Campaigns({ pool, config, rooms: roomService, mail, metrics, logger });
  const inbound = new InboundMail({ config, pool, redis, mail, sendMessage, metrics, logger });
  const accounts = new Accounts({ pool, redis, users, sessions, revocations: services.revocations, mail, logger });
  const relay = createOutboxRelay({
    jobs: services.publishJobs,
    ledger: services.ledger,
    broker,
    loadMessages: (ids) => messages.byIds(ids),
    intervalMs: config.outboxRelayIntervalMs,
    logger,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(securityHeaders());
  app.use(requestLog(logger, metrics));
  app.use('/api', mailLinkRoutes({ mail }));
  app.use('/api', accountLinkRoutes({ accounts }));
  app.use(express.json({ limit: MAX_REQUEST_BYTES, strict: true, verify: refuseInvalidUtf8 }));
  app.use(jsonGuard());
  app.use(healthRoutes({ pool, redis, broker, metrics }));
  app.use('/api', authRoutes({ users, sessions, rooms, loginLimiter: services.loginLimiter, revocations: services.revocations, metrics }));
  app.use('/api', accountRoutes({ sessions, users, accounts }));
  // Before roomRoutes and eventRoutes, which want an Authorization header on every path under
  // /rooms and /events: an EventSource cannot send one (it brings a ticket instead).
  app.use('/api', eventStreamRoutes({ sessions, roomService, events, tails, tickets: new StreamTickets(redis), slots: streamSlots, hub: streams, settings: config.streams, logger }));
  app.use('/api', roomRoutes({ sessions, rooms, roomService, inviteLimiter: services.inviteLimiter, metrics }));
  app.use('/api', messageRoutes({ sessions, roomService, messages, sendMessage, interactions: new Interactions(pool, sendMessage), metrics, visits: mail.store, logger }));
  app.use('/api', presenceRoutes({ sessions, roomService, presence }));
  app.use('/api', mailRoutes({ sessions, roomService, mail, adminToken: config.adminToken }));
  app.use('/api', inboundMailRoutes({ sessions, roomService, addresses: mail.addresses }));
  app.use('/api', webhookRoutes({ sessions, roomService, webhooks }));
  app.use('/api', campaignRoutes({ sessions, campaigns, adminToken: config.adminToken }));
  app.use('/api', eventRoutes({ sessions, roomService, events: events.store, feed: events.feed }));
  // GET /api/openapi.json: the description of every route above (http/api-spec.ts).
  app.use('/api', openApiRoutes({ publicUrl: config.publicUrl }));
  // The browser pages (npm run build:web). Never under /api: an unknown API path stays a JSON 404.
  app.use(/^(?!\/api(?:\/|$))/, express.static(options.webDir ?? path.join(repoRoot, 'web', 'dist'), { index: 'index.html', setHeaders: pageHeaders }));
  app.use(notFound);
  app.use(errorHandler(logger));

  // Wait briefly for the broker; the server still starts without it (the outbox covers sends).
  if (!(await broker.ready(5000))) logger.warn('starting without a broker connection; sends go through the outbox');
  if (options.relay !== false) relay.start();
  if (options.mail !== false) mail.start();
  if (options.mail !== false) accounts.start();
  if (options.webhooks !== false) await webhooks.start();
  if (options.campaigns !== false) campaigns.start();
  if (options.inboundMail === true) await inbound.start();
  services.revocations.start();
  streams.start();

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.app.port, config.app.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.app.host}:${port}`;
  logger.info({ url }, 'app server listening');

  return {
    url,
    port,
    app,
    logger,
    relay,
    mail,
    inbound,
    webhooks,
    campaigns,
    events,
    streams,
    broker,
    services,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Open streams would hold the close forever: each ends with `end {reason: "shutdown"}`.
        streams.close();
        tails.close();
      });
      await Promise.all([inbound.stop(), relay.stop(), mail.stop(), accounts.stop(), webhooks.stop(), campaigns.stop(), events.listener.close()]);
      await services.close();
    },
  };
}
