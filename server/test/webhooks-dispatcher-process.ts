/**
 * A webhook dispatcher in a process of its own, for webhooks-crash.test.ts to kill: delivers the
 * queue named by its first argument (the test's own, so that killing it never strands another
 * test's jobs) in the test profile's database as an app server's dispatcher does, hearing commits
 * through its own RoomEventListener.
 */
import { createPool } from '../src/db/pool';
import { EventStore } from '../src/events/event-store';
import { RoomEventListener } from '../src/events/room-event-listener';
import { createLogger } from '../src/logger';
import { MAIL_QUEUE, type MailJob } from '../src/mail/mail-job';
import { createMetrics } from '../src/metrics';
import { WebhookChannel } from '../src/webhooks';
import { JobQueue } from '../src/work/job-queue';
import { testConfig } from '../../testkit/test-config';

const config = testConfig();
const logger = createLogger(config, 'webhook-dispatcher');
const pool = createPool(config, () => undefined);
const listener = new RoomEventListener(config.postgres.url, logger);
await listener.start();
const webhooks = new WebhookChannel({
  pool,
  config,
  events: new EventStore(pool),
  listener,
  mail: { mail: new JobQueue<MailJob>(pool, MAIL_QUEUE), links: { publicUrl: config.publicUrl, linkSecret: config.linkSecret }, wakeSender: () => undefined },
  metrics: createMetrics(async () => 0),
  logger,
  intervalMs: 50,
  queue: process.argv[2] ?? 'webhook',
});
await webhooks.start();
process.send?.({ ready: true });
