/** A mail sender as an app server builds one, for tests that run it on its own (in a process or in-process). */
import type { Config } from '../../runtime/config';
import type { Pool } from '../src/db/pool';
import type { Logger } from '../src/logger';
import { MAIL_QUEUE, type MailJob } from '../src/mail/mail-job';
import { MailSender } from '../src/mail/mail-sender';
import { MailStore } from '../src/mail/mail-store';
import { MailTemplates } from '../src/mail/templates';
import { InboundAddresses } from '../src/mail/inbound-addresses';
import { createMetrics } from '../src/metrics';
import { JobQueue } from '../src/work/job-queue';

export async function mailSender(config: Config, pool: Pool, logger: Logger): Promise<MailSender> {
  const addresses = InboundAddresses.fromConfig(pool, config);
  return new MailSender({
    jobs: new JobQueue<MailJob>(pool, MAIL_QUEUE),
    smtp: config.mail,
    templates: await MailTemplates.load(config.mail.templatesDir, logger),
    store: new MailStore(pool),
    metrics: createMetrics(async () => 0),
    logger,
    intervalMs: 50,
    returnPath: (to) => addresses.bounceAddress(to),
  });
}
