/**
 * Sends the running campaigns' mail, one batch per pass, paced by the load gate and the rate
 * ceilings. One runner per app server; the recipients' leases keep two runners from sending to
 * one person at once, and a runner that dies keeps its batch only until the lease ends.
 *
 * A pass: ask the gate (with the local MTA's queue length); take places under the rate
 * ceilings; claim that many due recipients from the campaigns in turn; check each campaign is
 * still running; send the batch over the pooled SMTP connection, each mail's answer told to the
 * gate; record every recipient's outcome and the relay's answer. A recipient the relay deferred
 * is due again later; one refused for good is failed and its address suppressed; one who opted
 * out or bounced meanwhile is `suppressed` without a send.
 *
 * Duplicates: a recipient is marked sent after the relay's 250. A runner killed between the two
 * leaves it leased; when the lease ends it is sent again, with the same Message-ID. So a crash
 * sends at most one batch (BATCH mails) twice, and nothing else.
 */
import type { Transporter } from 'nodemailer';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { messageIdFor } from '../mail/mail-job';
import { roomUrl, unsubscribeUrl, type LinkConfig } from '../mail/mail-links';
import type { MailStore } from '../mail/mail-store';
import { smtpFailure, type SmtpSettings } from '../mail/smtp-transport';
import type { MailTemplates } from '../mail/templates';
import type { Job, JobQueue } from '../work/job-queue';
import { PassLoop } from '../work/pass-loop';
import { exponentialBackoff, type RetrySchedule } from '../work/retry-schedule';
import type { Campaign, CampaignStore, RecipientJob, RecipientNow } from './campaign-store';
import type { LoadGate, SendAnswer } from './load-gate';
import type { MtaQueue } from './mta-queue';
import type { RateCeiling } from './rate-ceiling';

/** Mails in one batch: also the most a crashed runner can have in flight, so the most it can send twice. */
export const CAMPAIGN_BATCH = 20;
/** Longer than a batch can take over a slow relay (each send has its own timeouts). */
const LEASE_MS = 3 * 60_000;
/** Nothing to send (nothing running, or everything due later): look again after this. */
const IDLE_MS = 500;
const GAUGE_EVERY_MS = 5000;
const SWEEP_EVERY_MS = 10_000;
/** Sends at once: one per pooled SMTP connection, so a send's measured latency is the relay's, not a wait for a free connection. */
export const SEND_CONCURRENCY = 8;

export interface CampaignRunnerOptions {
  store: CampaignStore;
  gate: LoadGate;
  mta: Pick<MtaQueue, 'length'>;
  rate: RateCeiling;
  transport: Pick<Transporter, 'sendMail'>;
  smtp: Pick<SmtpSettings, 'from' | 'domain'>;
  templates: Pick<MailTemplates, 'render'>;
  mailStore: Pick<MailStore, 'suppress'>;
  links: LinkConfig;
  /** The envelope sender of a mail to this address: roomcast's bounce address for it, so a delivery report suppresses it (docs/inbound-mail.md). */
  returnPath: (to: string) => Promise<string>;
  /** First delay before a deferred recipient is tried again; backs off to 10 minutes. */
  retryFirstMs: number;
  metrics: Pick<Metrics, 'campaignSends' | 'campaignRecipients' | 'campaignGateWaiting'>;
  logger: Logger;
  /** The sender's name on mail the operators sent (no instructor). */
  operatorsName: string;
}

/** One recipient's end in this batch; `handedOver`: a mail reached the relay (it counts against the ceilings). */
type Sent = { id: number; outcome: 'sent' | 'suppressed' | 'refused' | 'retry' | 'unsent'; answer: string; handedOver: boolean };

/** Runs `fn` over `items`, at most `limit` at once, keeping their order in the result. */
async function inParallel<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

export class CampaignRunner {
  private readonly loop: PassLoop<number>;
  private turn = 0;
  private lastGauge = 0;
  private lastSweep = 0;
  /** With only gate-paused campaigns, the next probe mail goes no sooner than this. */
  private nextProbeAt = 0;
  private readonly schedule: RetrySchedule;

  constructor(private readonly o: CampaignRunnerOptions) {
    this.schedule = exponentialBackoff({ firstMs: o.retryFirstMs, maxMs: 10 * 60_000, maxAttempts: 100 });
    // Each pass says how long until the next: a wait the gate or a ceiling asked for, or none.
    this.loop = new PassLoop({
      pass: () => this.pass(),
      after: (delayMs) => delayMs,
      afterError: (err) => {
        o.logger.warn({ err: (err as Error).message }, 'campaign pass failed');
        return IDLE_MS * 4;
      },
    });
  }

  start(): void {
    this.loop.start(0);
  }

  /** Stops claiming; resolves once the batch in flight is recorded. Campaigns stay as they are, to be resumed by any runner. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** A campaign was created or resumed: look now instead of at the next idle check. */
  wake(): void {
    this.loop.wake();
  }

  private async pass(): Promise<number> {
    const { store, gate } = this.o;
    const active = await store.active();
    await this.refreshGauge(active);
    await this.sweepCancelled();
    const running = active.filter((c) => c.state === 'running');
    const gatePaused = active.filter((c) => c.state === 'paused');
    if (active.length === 0) {
      this.o.metrics.campaignGateWaiting.set(0);
      return IDLE_MS;
    }
    const decision = gate.check(await this.o.mta.length(), Date.now());
    this.o.metrics.campaignGateWaiting.set(decision.action === 'send' && !gate.paused ? 0 : 1);
    if (decision.action === 'pause') {
      for (const c of running) await store.transition(c.id, ['running'], { state: 'paused', by: 'gate', reason: decision.reason });
      this.o.logger.warn({ campaigns: running.map((c) => c.id), reason: decision.reason }, 'the mail server stayed unhealthy past the deadline; campaigns paused until it recovers');
      return 0;
    }
    if (decision.action === 'wait') {
      await store.noteGate(running.map((c) => c.id), decision.reason);
      return decision.waitMs;
    }
    // Only gate-paused campaigns (another server's gate paused them, or this one's before a
    // restart): one probe mail per interval, and an accepted one resumes them all.
    const probing = decision.probe || gate.paused || running.length === 0;
    if (running.length === 0 && Date.now() < this.nextProbeAt) return this.nextProbeAt - Date.now();
    const from = running.length > 0 ? running : gatePaused;
    const due = await store.withDueRecipients(from.map((c) => c.id));
    if (due.length === 0) {
      // Nothing due now (everything left waits for a retry): nothing to reserve, only campaigns to finish.
      for (const c of from) await this.finishIfDone(c);
      return IDLE_MS;
    }
    const reservation = await this.o.rate.reserve(probing ? 1 : CAMPAIGN_BATCH);
    if (reservation.granted === 0) {
      const note = reservation.limitedBy === 'hour' ? `the hourly ceiling (${this.o.rate.limits.perHour} mails per hour) is reached; sending resumes in ${Math.ceil(reservation.retryAfterMs / 1000)} s` : null;
      await store.noteGate(running.map((c) => c.id), note);
      return reservation.retryAfterMs;
    }
    await store.noteGate(running.map((c) => c.id), null);
    if (running.length === 0) this.nextProbeAt = Date.now() + gate.limits.probeEveryMs;
    let claimed = 0;
    let handedOver = 0;
    const candidates = from.filter((c) => due.includes(c.id));
    for (let i = 0; i < candidates.length && claimed < reservation.granted; i++) {
      const campaign = candidates[this.turn++ % candidates.length] as Campaign;
      const queue = store.queue(campaign.id);
      const jobs = await queue.claim(reservation.granted - claimed, LEASE_MS);
      claimed += jobs.length;
      if (jobs.length > 0) handedOver += await this.sendBatch(campaign, queue, jobs, gatePaused, probing);
      await this.finishIfDone(campaign);
    }
    // The ceilings count mails handed to the relay: places of recipients skipped or not claimed go back.
    await this.o.rate.giveBack(reservation, reservation.granted - handedOver);
    return claimed === 0 ? IDLE_MS : 0;
  }

  /** Done once no recipient is pending; a campaign the gate paused can end so too (its last recipients ended in probes). */
  private async finishIfDone(campaign: Campaign): Promise<void> {
    const done = await this.o.store.transition(campaign.id, [campaign.state], { state: 'done' });
    if (done) this.o.logger.info({ campaign: campaign.id, recipients: campaign.recipients }, 'campaign finished');
  }

  /** Recipients of cancelled campaigns left pending (a deferral that raced the cancel, a dead runner's lease): ended as cancelled. */
  private async sweepCancelled(): Promise<void> {
    if (Date.now() - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = Date.now();
    const swept = await this.o.store.sweepCancelled();
    if (swept > 0) this.o.logger.info({ recipients: swept }, 'recipients of cancelled campaigns ended as cancelled');
  }

  /** Sends one campaign's claimed recipients; resolves to how many mails it handed to the relay. */
  private async sendBatch(campaign: Campaign, queue: JobQueue<RecipientJob>, jobs: Job<RecipientJob>[], gatePaused: Campaign[], probe: boolean): Promise<number> {
    const ids = jobs.map((j) => j.id);
    const cancelled = (): Promise<void> => queue.settle(ids.map((id) => ({ id, state: 'done', outcome: 'cancelled', answer: 'the campaign was cancelled' })));
    // Paused or cancelled since this pass read it: send nothing of it.
    const now = await this.o.store.stateOf(campaign.id);
    if (now?.state === 'cancelled') {
      await cancelled();
      return 0;
    }
    if (!now || now.state !== campaign.state || now.pausedBy !== campaign.pausedBy) {
      await queue.release(ids);
      return 0;
    }
    // A sender no longer an instructor of every room may not mail them in their name.
    if (campaign.createdBy !== null && !(await this.o.store.teachesAll(campaign.createdBy, campaign.roomIds))) {
      await this.o.store.transition(campaign.id, ['running', 'paused'], { state: 'cancelled', reason: 'cancelled by roomcast: its sender is no longer an instructor of every one of its rooms' });
      await cancelled();
      this.o.logger.warn({ campaign: campaign.id, sender: campaign.createdBy }, 'campaign cancelled: its sender no longer teaches all its rooms');
      return 0;
    }
    const people = await this.o.store.recipientsNow(jobs.map((j) => j.payload));
    const senderName = (await this.o.store.senderName(campaign.createdBy)) ?? this.o.operatorsName;
    // The lease is renewed while the batch is out, so a slow relay never lets another runner take these recipients meanwhile.
    const renewal = setInterval(() => void queue.renew(ids, LEASE_MS).catch(() => undefined), LEASE_MS / 3);
    let results: Sent[];
    try {
      // The gate is asked again before each mail: once the relay says slow down (or the last sends failed), the rest of the batch stays unsent. A probe is one mail sent to find out.
      results = await inParallel(jobs, SEND_CONCURRENCY, (job) =>
        !probe && this.o.gate.stopsBatch(Date.now())
          ? Promise.resolve<Sent>({ id: job.id, outcome: 'unsent', answer: '', handedOver: false })
          : this.sendOne(campaign, job, people.get(job.payload.userId), senderName),
      );
    } finally {
      clearInterval(renewal);
    }
    await queue.release(results.filter((r) => r.outcome === 'unsent').map((r) => r.id));
    // Cancelled while the batch was out: what is not sent is not retried either.
    const cancelledMeanwhile = (await this.o.store.stateOf(campaign.id))?.state === 'cancelled';
    const attempts = new Map(jobs.map((j) => [j.id, j.attempts]));
    await queue.settle(
      results.flatMap((r): { id: number; state: 'done' | 'failed'; outcome: string; answer: string }[] => {
        if (r.outcome === 'unsent') return [];
        if (r.outcome === 'retry') return cancelledMeanwhile ? [{ id: r.id, state: 'done' as const, outcome: 'cancelled', answer: 'the campaign was cancelled' }] : [];
        return [{ id: r.id, state: r.outcome === 'refused' ? ('failed' as const) : ('done' as const), outcome: r.outcome, answer: r.answer }];
      }),
    );
    if (!cancelledMeanwhile) {
      await queue.retry(
        results.flatMap((r) => (r.outcome === 'retry' ? [{ id: r.id, error: r.answer, attempts: attempts.get(r.id) ?? 1 }] : [])),
        this.schedule,
      );
    }
    // An accepted mail while campaigns are gate-paused and this gate is healthy: they resume.
    if (!this.o.gate.paused && gatePaused.length > 0 && results.some((r) => r.outcome === 'sent')) {
      for (const c of gatePaused) await this.o.store.transition(c.id, ['paused'], { state: 'running' }, 'gate');
      this.nextProbeAt = 0;
      this.o.logger.info({ campaigns: gatePaused.map((c) => c.id) }, 'the mail server is healthy again; campaigns the gate paused resume');
    }
    return results.filter((r) => r.handedOver).length;
  }

  private async sendOne(campaign: Campaign, job: Job<RecipientJob>, who: RecipientNow | undefined, senderName: string): Promise<Sent> {
    const skip = (answer: string): Sent => {
      this.o.metrics.campaignSends.inc({ answer: 'suppressed' });
      return { id: job.id, outcome: 'suppressed', answer, handedOver: false };
    };
    if (!who || who.email === null) return skip('no verified address any more');
    if (who.suppressed) return skip('the address is suppressed (it bounced or complained)');
    if (who.optedOut) return skip('unsubscribed from this room’s mail, or left the room');
    const unsubscribe = unsubscribeUrl(this.o.links, who.userId, who.roomId);
    let rendered;
    try {
      rendered = await this.o.templates.render('announcement', {
        recipient: { name: who.name },
        room: { name: who.roomName, url: roomUrl(this.o.links, who.roomId, who.role) },
        sender: { name: senderName },
        announcement: { subject: campaign.subject, text: campaign.text },
        unsubscribeUrl: unsubscribe,
      });
    } catch (err) {
      // The campaign's text was checked against the template when it was created; an edit of the template since may not fit it. A fixed template applies on retry.
      return { id: job.id, outcome: 'retry', answer: `template: ${(err as Error).message}`, handedOver: false };
    }
    const started = Date.now();
    let answer: SendAnswer;
    let text: string;
    try {
      const info = (await this.o.transport.sendMail({
        from: this.o.smtp.from,
        to: who.email,
        envelope: { from: await this.o.returnPath(who.email), to: who.email },
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        messageId: messageIdFor(`campaign:${campaign.id}:${who.userId}`, this.o.smtp.domain),
        headers: {
          'List-Unsubscribe': `<${unsubscribe}>`,
          'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
          // Bulk mail: vacation responders stay quiet (RFC 3834 readers honour it).
          Precedence: 'bulk',
        },
      })) as { response?: string };
      answer = 'accepted';
      text = info.response ?? '250';
    } catch (err) {
      const failure = smtpFailure(err);
      answer = failure.kind;
      text = failure.answer;
    }
    this.o.gate.observe(answer, Date.now() - started, Date.now());
    this.o.metrics.campaignSends.inc({ answer });
    if (answer === 'accepted') return { id: job.id, outcome: 'sent', answer: text, handedOver: true };
    if (answer === 'refused') {
      await this.o.mailStore.suppress(who.email, text);
      this.o.logger.warn({ campaign: campaign.id, to: who.email, answer: text }, 'the relay refused the address for good; it is suppressed');
      return { id: job.id, outcome: 'refused', answer: text, handedOver: true };
    }
    return { id: job.id, outcome: 'retry', answer: text, handedOver: true };
  }

  private async refreshGauge(active: Campaign[]): Promise<void> {
    if (Date.now() - this.lastGauge < GAUGE_EVERY_MS) return;
    this.lastGauge = Date.now();
    const totals: Record<string, number> = {};
    for (const c of active) {
      for (const [state, n] of Object.entries(await this.o.store.counts(c.id))) totals[state] = (totals[state] ?? 0) + n;
    }
    this.o.metrics.campaignRecipients.reset();
    for (const [state, n] of Object.entries(totals)) this.o.metrics.campaignRecipients.set({ state }, n);
  }
}
