/**
 * Sends queued mail (the 'mail' queue) over a pooled SMTP connection to the configured relay:
 * infra's Exim locally, whatever relay production names. nodemailer does not retry; we do:
 * - a 4xx answer or a network failure (timeout, refused connection) is retried with backoff;
 * - a 5xx answer to the recipient (RCPT TO) fails the mail for good, records the answer, and
 *   suppresses the address, so nothing more is sent to it until an operator lifts the suppression;
 *   a 5xx elsewhere (authentication, MAIL FROM, DATA) says nothing of the address and is retried;
 * - a suppressed address fails its mail without a send.
 * Every mail's Message-ID comes from its job, so a mail sent again after a crash (its worker
 * died between the relay's 250 and recording it) is recognisable as the same mail. At most one
 * batch per worker is in flight, which bounds such copies.
 */
import type { Transporter } from 'nodemailer';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { Job, JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { Worker, type JobOutcome } from '../work/worker';
import { messageIdFor, type MailJob } from './mail-job';
import type { MailStore } from './mail-store';
import { createSmtpTransport, smtpFailure, type SmtpSettings } from './smtp-transport';
import type { MailTemplates } from './templates';

export interface MailSenderOptions {
  jobs: JobQueue<MailJob>;
  smtp: SmtpSettings;
  templates: Pick<MailTemplates, 'render'>;
  store: Pick<MailStore, 'isSuppressed' | 'suppress'>;
  metrics: Pick<Metrics, 'mailSent' | 'mailFailures'>;
  logger: Logger;
  intervalMs: number;
  /**
   * The envelope sender of mail to an address: its bounces+ address (inbound-addresses.ts),
   * so a delivery status notification that comes back says which address bounced.
   */
  returnPath: (to: string) => Promise<string>;
}

/** Mails one worker sends per pass: also the most a crash can send twice. */
export const MAIL_BATCH = 20;
/** Longer than a batch can take over a slow relay (each send has its own timeouts below). */
const LEASE_MS = 5 * 60_000;
/** Gives up after about a day of deferrals, as MTAs do. */
const MAX_ATTEMPTS = 30;

export class MailSender {
  readonly worker: Worker<MailJob>;
  private readonly transport: Transporter;

  constructor(private readonly o: MailSenderOptions) {
    this.transport = createSmtpTransport(o.smtp, { maxConnections: 2 });
    this.worker = new Worker({
      queue: o.jobs,
      schedule: exponentialBackoff({ firstMs: o.smtp.retryFirstMs, maxMs: 3600_000, maxAttempts: MAX_ATTEMPTS }),
      batch: MAIL_BATCH,
      leaseMs: LEASE_MS,
      intervalMs: o.intervalMs,
      logger: o.logger,
      handle: (jobs) => Promise.all(jobs.map((job) => this.send(job))),
    });
  }

  async close(): Promise<void> {
    await this.worker.stop();
    this.transport.close();
  }

  private async send(job: Job<MailJob>): Promise<JobOutcome> {
    const mail = job.payload;
    if (await this.o.store.isSuppressed(mail.to)) {
      this.o.metrics.mailFailures.inc({ kind: 'suppressed' });
      return { id: job.id, outcome: 'failed', error: 'the address is suppressed' };
    }
    let rendered;
    try {
      rendered = await this.o.templates.render(mail.type, mail.vars as never);
    } catch (err) {
      // The template or its variables are wrong; a fixed template (no restart) sends it.
      this.o.metrics.mailFailures.inc({ kind: 'template' });
      return { id: job.id, outcome: 'retry', error: (err as Error).message };
    }
    try {
      const headers: Record<string, string> = { 'Auto-Submitted': mail.autoSubmitted ?? 'auto-generated' };
      if (mail.unsubscribeUrl) Object.assign(headers, { 'List-Unsubscribe': `<${mail.unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
      await this.transport.sendMail({
        from: this.o.smtp.from,
        to: mail.to,
        envelope: { from: await this.o.returnPath(mail.to), to: mail.to },
        ...(mail.replyTo ? { replyTo: mail.replyTo } : {}),
        ...(mail.inReplyTo ? { inReplyTo: mail.inReplyTo, references: mail.inReplyTo } : {}),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        messageId: messageIdFor(job.ref, this.o.smtp.domain),
        headers,
      });
      this.o.metrics.mailSent.inc({ type: mail.type });
      return { id: job.id, outcome: 'done' };
    } catch (err) {
      const { kind, answer } = smtpFailure(err);
      if (kind === 'refused') {
        this.o.metrics.mailFailures.inc({ kind: 'permanent' });
        await this.o.store.suppress(mail.to, answer);
        this.o.logger.warn({ jobId: job.id, to: mail.to, answer }, 'the relay refused the mail for good; the address is suppressed');
        return { id: job.id, outcome: 'failed', error: answer };
      }
      this.o.metrics.mailFailures.inc({ kind: 'temporary' });
      this.o.logger.info({ jobId: job.id, to: mail.to, answer, attempt: job.attempts }, 'mail deferred; will retry');
      return { id: job.id, outcome: 'retry', error: answer };
    }
  }
}
