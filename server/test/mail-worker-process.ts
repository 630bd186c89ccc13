/**
 * A mail worker in a process of its own, for mail-crash.test.ts to kill: sends the 'mail'
 * queue of the test profile's database through the test Exim, as an app server's sender does.
 */
import { createPool } from '../src/db/pool';
import { createLogger } from '../src/logger';
import { MAIL_QUEUE, type MailJob } from '../src/mail/mail-job';
import { MailSender } from '../src/mail/mail-sender';
import { MailStore } from '../src/mail/mail-store';
import { MailTemplates } from '../src/mail/templates';
import { createMetrics } from '../src/metrics';
import { JobQueue } from '../src/work/job-queue';
import { testConfig } from '../../testkit/test-config';

const config = testConfig();
const logger = createLogger(config, 'mail-worker');
const pool = createPool(config, () => undefined);
const sender = new MailSender({
  jobs: new JobQueue<MailJob>(pool, MAIL_QUEUE),
  smtp: config.mail,
  templates: await MailTemplates.load(config.mail.templatesDir, logger),
  store: new MailStore(pool),
  metrics: createMetrics(async () => 0),
  logger,
  intervalMs: 50,
});
sender.worker.start();
process.send?.({ ready: true });
