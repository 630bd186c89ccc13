/** A campaign runner as an app server builds one, for tests that run it on its own (in a process or in-process) with settings of their own. */
import type { Config } from '../../runtime/config';
import { Campaigns } from '../src/campaigns';
import type { Pool } from '../src/db/pool';
import type { Logger } from '../src/logger';
import { MailStore } from '../src/mail/mail-store';
import { MailTemplates } from '../src/mail/templates';
import { createMetrics, type Metrics } from '../src/metrics';

export async function campaignRunner(config: Config, pool: Pool, logger: Logger, metrics: Metrics = createMetrics(async () => 0)): Promise<Campaigns> {
  const mail = {
    templates: await MailTemplates.load(config.mail.templatesDir, logger),
    links: { publicUrl: config.publicUrl, linkSecret: config.linkSecret },
    store: new MailStore(pool),
  };
  // The runner alone: creating campaigns is the app server's API, which these tests call.
  const rooms = { requireMember: () => Promise.reject(new Error('this runner serves no API')) };
  return new Campaigns({ pool, config, rooms, mail, metrics, logger });
}
