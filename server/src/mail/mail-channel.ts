/**
 * The mail channel's parts, built once per app server: the sender (the 'mail' queue), the
 * notifier ('notify'), digests ('digest') and reminders ('reminders'), all leased work on the
 * jobs table, so any number of app servers share them. `docs/mail.md` describes the channel.
 */
import type { Config } from '../../../runtime/config';
import { InboundAddresses } from './inbound-addresses';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { PresenceStore } from '../presence/presence-store';
import { JobQueue, type QueueStats } from '../work/job-queue';
import { createDigests, DIGEST_QUEUE, type DigestJob } from './digests';
import { MAIL_QUEUE, type MailJob } from './mail-job';
import type { LinkConfig } from './mail-links';
import { MailSender } from './mail-sender';
import { MailStore } from './mail-store';
import { createNotifier, NOTIFY_QUEUE } from './notifier';
import { Reminders, REMINDERS_QUEUE } from './reminders';
import { MailTemplates } from './templates';

// The notifier is woken at each commit (wakeNotifier); its own passes only catch what a lost
// notification left, or what another server's notifier dropped.
const NOTIFY_INTERVAL_MS = 2000;
const MAIL_INTERVAL_MS = 1000;
const DIGEST_INTERVAL_MS = 5000;

export class MailChannel {
  readonly store: MailStore;
  readonly mail: JobQueue<MailJob>;
  readonly links: LinkConfig;
  /** The reply, command and bounce addresses mails carry (docs/inbound-mail.md). */
  readonly addresses: InboundAddresses;
  private readonly queues: JobQueue<unknown>[];
  private readonly sender: MailSender;
  private readonly notifier: { wake(): void };
  private readonly parts: { start(): void; stop(): Promise<void> }[];

  private constructor(
    readonly templates: MailTemplates,
    o: { pool: Pool; config: Config; presence: Pick<PresenceStore, 'online'>; metrics: Metrics; logger: Logger },
  ) {
    const { pool, config, logger } = o;
    this.store = new MailStore(pool);
    this.links = { publicUrl: config.publicUrl, linkSecret: config.linkSecret };
    const addresses = (this.addresses = InboundAddresses.fromConfig(pool, config));
    this.mail = new JobQueue<MailJob>(pool, MAIL_QUEUE);
    const notify = new JobQueue(pool, NOTIFY_QUEUE);
    const digest = new JobQueue<DigestJob>(pool, DIGEST_QUEUE);
    const reminders = new JobQueue(pool, REMINDERS_QUEUE);
    this.queues = [this.mail, notify, digest, reminders] as JobQueue<unknown>[];
    this.sender = new MailSender({
      jobs: this.mail,
      smtp: { ...config.mail },
      templates,
      store: this.store,
      metrics: o.metrics,
      logger,
      intervalMs: MAIL_INTERVAL_MS,
      returnPath: (to) => addresses.bounceAddress(to),
    });
    const onMail = (): void => this.wakeSender();
    const shared = { pool, mail: this.mail, store: this.store, links: this.links, logger, onMail };
    const notifier = (this.notifier = createNotifier({ ...shared, jobs: notify, digests: digest, presence: o.presence, addresses, intervalMs: NOTIFY_INTERVAL_MS }));
    const digests = createDigests({ ...shared, jobs: digest, intervalMs: DIGEST_INTERVAL_MS });
    const reminderSweeps = new Reminders({ ...shared, jobs: reminders, awayMs: config.mail.reminderAfterMs, intervalMs: config.mail.reminderIntervalMs });
    this.parts = [
      { start: () => this.sender.worker.start(), stop: () => this.sender.close() },
      notifier,
      digests,
      reminderSweeps,
    ];
  }

  /** Loads the templates (a broken set refuses to start) and builds the parts; nothing runs until `start`. */
  static async create(o: { pool: Pool; config: Config; presence: Pick<PresenceStore, 'online'>; metrics: Metrics; logger: Logger }): Promise<MailChannel> {
    return new MailChannel(await MailTemplates.load(o.config.mail.templatesDir, o.logger), o);
  }

  start(): void {
    for (const p of this.parts) p.start();
  }

  /**
   * A room has new events: a message among them may have a notify job, which this server's
   * notifier takes now instead of at its next pass.
   */
  wakeNotifier(): void {
    this.notifier.wake();
  }

  /** Mail was just queued (a password reset, say): this server's sender starts on it now. */
  wakeSender(): void {
    this.sender.worker.wake();
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stop()));
  }

  /** Pending and failed jobs of every mail queue. */
  async stats(): Promise<({ queue: string } & QueueStats)[]> {
    return Promise.all(this.queues.map(async (q) => ({ queue: q.name, ...(await q.stats()) })));
  }
}
