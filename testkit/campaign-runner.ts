/** A campaign runner as an app server builds one, for tests that run it on its own (in a process or in-process) with settings of their own. */
import { randomBytes } from 'node:crypto';
import type { Config } from '../runtime/config';
import { Campaigns } from '../server/src/campaigns';
import type { Pool } from '../server/src/db/pool';
import type { Logger } from '../server/src/logger';
import { InboundAddresses } from '../server/src/mail/inbound-addresses';
import { MailStore } from '../server/src/mail/mail-store';
import { MailTemplates } from '../server/src/mail/templates';
import { createMetrics, type Metrics } from '../server/src/metrics';

export async function campaignRunner(config: Config, pool: Pool, logger: Logger, metrics: Metrics = createMetrics(async () => 0)): Promise<Campaigns> {
  const mail = {
    templates: await MailTemplates.load(config.mail.templatesDir, logger),
    links: { publicUrl: config.publicUrl, linkSecret: config.linkSecret },
    store: new MailStore(pool),
    addresses: InboundAddresses.fromConfig(pool, config),
  };
  // The runner alone: creating campaigns is the app server's API, which these tests call.
  const rooms = { requireMember: () => Promise.reject(new Error('this runner serves no API')) };
  return new Campaigns({ pool, config, rooms, mail, metrics, logger });
}

/** Adds learners with verified addresses to a room straight in the database: a campaign's audience of hundreds without hundreds of logins. Resolves to their ids. */
export async function addMailableLearners(pool: Pool, roomId: string, emails: readonly string[]): Promise<string[]> {
  const run = randomBytes(4).toString('hex');
  const { rows } = await pool.query<{ id: string }>(
    `WITH u AS (
       INSERT INTO users (username, display_name, role, password_hash, email, email_verified_at)
       SELECT 'cmp-' || $1 || '-' || i, 'Learner ' || i, 'learner', 'x', e, now() FROM unnest($2::text[]) WITH ORDINALITY AS t(e, i)
       RETURNING id)
     INSERT INTO memberships (room_id, user_id, role) SELECT $3, id, 'learner' FROM u RETURNING user_id AS id`,
    [run, emails, roomId],
  );
  return rows.map((r) => r.id);
}
