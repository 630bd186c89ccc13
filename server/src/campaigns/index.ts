/**
 * Bulk announcements by e-mail (docs/campaigns.md): what the API does with a campaign (create,
 * follow, pause, resume, cancel; who may), and the runner that sends them. Built once per app
 * server; every server's runner shares the same recipients' jobs and rate ceilings.
 */
import type { Config } from '../../../runtime/config';
import type { CampaignBody, RecipientState } from '../../../shared/protocol/campaigns';
import { AppError, ForbiddenError, NotFoundError, ValidationError } from '../errors';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { MailChannel } from '../mail/mail-channel';
import { createSmtpTransport } from '../mail/smtp-transport';
import type { Metrics } from '../metrics';
import type { RoomService } from '../rooms/room-service';
import { CampaignRunner, SEND_CONCURRENCY } from './campaign-runner';
import { CampaignStore, MAX_ALL_ROOMS, type Campaign } from './campaign-store';
import { DEFAULT_GATE_LIMITS, LoadGate } from './load-gate';
import { MtaQueue } from './mta-queue';
import { RateCeiling } from './rate-ceiling';

export { CAMPAIGN_BATCH } from './campaign-runner';

/** Who asks: an instructor with a session, or the operators (the admin API). */
export type Actor = { userId: string } | 'operators';

/** Rooms one campaign may address: each is a recipient query, and the whole list is checked member by member. */
export const MAX_ROOMS = 100;
/** What a recipient's state means, for instructors (the relay's own words go to the operators). */
const RECIPIENT_STATE_TEXT: Record<RecipientState, string> = {
  queued: 'not tried yet',
  sending: 'being handed to the mail server',
  deferred: 'the mail server said to try again later; it will be',
  sent: 'accepted by the mail server',
  failed: 'the mail server refused the address',
  suppressed: 'not sent',
  cancelled: 'not sent: the campaign was cancelled',
};

/** Campaigns one instructor may have running or paused at once: one person cannot fill every ceiling with mail of theirs. */
export const MAX_ACTIVE_PER_SENDER = 5;
/** The sender's name on announcements the operators send. */
const OPERATORS_NAME = 'roomcast';

export interface CampaignsOptions {
  pool: Pool;
  config: Pick<Config, 'campaigns' | 'mail'>;
  rooms: Pick<RoomService, 'requireMember'>;
  mail: Pick<MailChannel, 'templates' | 'links' | 'store' | 'addresses'>;
  metrics: Metrics;
  logger: Logger;
}

export class Campaigns {
  readonly store: CampaignStore;
  readonly runner: CampaignRunner;
  private readonly transport: ReturnType<typeof createSmtpTransport>;
  private readonly rate: RateCeiling;

  constructor(private readonly o: CampaignsOptions) {
    const c = o.config.campaigns;
    this.store = new CampaignStore(o.pool);
    this.rate = new RateCeiling(o.pool, { perSecond: c.ratePerSecond, perHour: c.ratePerHour });
    // One kept-open connection per mail a batch sends at once (SEND_CONCURRENCY).
    this.transport = createSmtpTransport(o.config.mail, { maxConnections: SEND_CONCURRENCY });
    this.runner = new CampaignRunner({
      store: this.store,
      gate: new LoadGate({
        ...DEFAULT_GATE_LIMITS,
        maxQueue: c.maxQueue,
        maxErrorRatio: c.maxErrorRatio,
        maxLatencyMs: c.maxLatencyMs,
        pauseAfterMs: c.pauseAfterMs,
        probeEveryMs: c.probeEveryMs,
      }),
      mta: new MtaQueue(c.queueCommand, o.logger),
      rate: this.rate,
      transport: this.transport,
      smtp: o.config.mail,
      templates: o.mail.templates,
      mailStore: o.mail.store,
      links: o.mail.links,
      returnPath: (to) => o.mail.addresses.bounceAddress(to),
      retryFirstMs: c.retryFirstMs,
      metrics: o.metrics,
      logger: o.logger,
      operatorsName: OPERATORS_NAME,
    });
  }

  start(): void {
    this.runner.start();
  }

  async stop(): Promise<void> {
    await this.runner.stop();
    this.transport.close();
  }

  /**
   * Starts a campaign to every member of the rooms with a verified address (the sender aside).
   * An instructor must teach every room. The subject and text are rendered into the template
   * first, so a campaign that could not be sent is refused here, not found out per recipient.
   * The same `idempotencyKey` again returns the campaign the first request started (`replayed`).
   */
  async create(actor: Actor, input: { roomIds: string[] | 'all'; subject: string; text: string; idempotencyKey?: string }): Promise<{ campaign: CampaignBody; replayed: boolean }> {
    const roomIds = input.roomIds === 'all' ? await this.store.roomIds('all') : [...new Set(input.roomIds)];
    if (roomIds.length > MAX_ALL_ROOMS) throw new ValidationError(`there are more than ${MAX_ALL_ROOMS} rooms: send to them in campaigns of at most ${MAX_ALL_ROOMS} (roomIds)`);
    if (actor === 'operators') {
      const known = new Set(await this.store.roomIds(roomIds));
      const unknown = roomIds.find((id) => !known.has(id));
      if (unknown !== undefined) throw new NotFoundError('room_not_found', `no such room: ${unknown}`);
    } else {
      for (const roomId of roomIds) {
        const { role } = await this.o.rooms.requireMember(roomId, actor.userId);
        if (role !== 'instructor') throw new ForbiddenError('forbidden', `only instructors send announcements, and you are a learner in ${roomId}`);
      }
    }
    await this.checkRenders(input.subject, input.text);
    const created = await this.store.create({
      createdBy: actor === 'operators' ? null : actor.userId,
      roomIds,
      subject: input.subject,
      text: input.text,
      ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
      maxActive: MAX_ACTIVE_PER_SENDER,
    });
    if (created === 'too_many') throw new AppError(409, 'too_many_campaigns', `you have ${MAX_ACTIVE_PER_SENDER} campaigns running or paused; let one finish, or cancel one, first`);
    if (created === 'no_recipients') throw new AppError(422, 'no_recipients', 'nobody in these rooms has a verified e-mail address (the sender aside): nothing to send');
    const { campaign, replayed } = created;
    if (!replayed) {
      this.o.logger.info({ campaign: campaign.id, rooms: roomIds.length, recipients: campaign.recipients, by: actor === 'operators' ? 'operators' : actor.userId }, 'campaign started');
      this.runner.wake();
    }
    return { campaign: await this.view(campaign), replayed };
  }

  async list(actor: Actor, o: { limit: number; roomId?: string }): Promise<CampaignBody[]> {
    const campaigns = await this.store.list(actor === 'operators' ? 'all' : actor, o);
    return Promise.all(campaigns.map((c) => this.view(c)));
  }

  async get(actor: Actor, id: string): Promise<CampaignBody> {
    return this.view(await this.visible(actor, id));
  }

  /**
   * Where each recipient is. The operators get the relay's own answers; instructors get what
   * they mean, since a relay's text names addresses and hosts (`550 <bob@…>: …`, `… 10.0.0.5:25`).
   */
  async recipients(actor: Actor, id: string, o: { state?: RecipientState; limit: number }) {
    await this.visible(actor, id);
    return (await this.store.recipients(id, o)).map((r) => ({
      ...r,
      answer: actor === 'operators' || r.state === 'suppressed' || r.state === 'cancelled' ? r.answer : RECIPIENT_STATE_TEXT[r.state],
      updatedAt: r.updatedAt?.toISOString() ?? null,
    }));
  }

  /** Pauses by hand (a running campaign, or one the gate paused, which then stays paused until resumed): nothing more is claimed; a batch already being sent finishes. */
  async pause(actor: Actor, id: string): Promise<CampaignBody> {
    const to = { state: 'paused', by: 'user', reason: 'paused by hand' } as const;
    const before = await this.visible(actor, id);
    const after = (await this.store.transition(id, ['running'], to)) ?? (await this.store.transition(id, ['paused'], to, 'gate'));
    return this.changed(actor, before, after, 'only a running campaign, or one the load gate paused, can be paused');
  }

  /** Resumes from where it stopped: only recipients not yet final are sent. */
  async resume(actor: Actor, id: string): Promise<CampaignBody> {
    const view = await this.change(actor, id, ['paused'], { state: 'running' }, 'only a paused campaign can be resumed');
    this.runner.wake();
    return view;
  }

  /** Cancels: recipients not yet sent are never sent. */
  cancel(actor: Actor, id: string): Promise<CampaignBody> {
    return this.change(actor, id, ['running', 'paused'], { state: 'cancelled' }, 'only a running or paused campaign can be cancelled');
  }

  private async change(
    actor: Actor,
    id: string,
    from: Campaign['state'][],
    to: Parameters<CampaignStore['transition']>[2],
    refusal: string,
  ): Promise<CampaignBody> {
    const before = await this.visible(actor, id);
    return this.changed(actor, before, await this.store.transition(id, from, to), refusal);
  }

  private async changed(actor: Actor, before: Campaign, after: Campaign | null, refusal: string): Promise<CampaignBody> {
    if (!after) throw new AppError(409, 'campaign_state_conflict', `${refusal}; this one is ${(await this.store.stateOf(before.id))?.state ?? before.state}`);
    this.o.logger.info({ campaign: before.id, from: before.state, to: after.state, by: actor === 'operators' ? 'operators' : actor.userId }, 'campaign state changed by hand');
    return this.view(after);
  }

  /**
   * The campaign, if the actor may see it: an instructor of every one of its rooms (its
   * recipient list names members of all of them; its sender too, and only while that holds), or
   * the operators. 404 otherwise, so ids are not probed.
   */
  private async visible(actor: Actor, id: string): Promise<Campaign> {
    const campaign = await this.store.get(id);
    if (campaign && (actor === 'operators' || (await this.store.teachesAll(actor.userId, campaign.roomIds)))) return campaign;
    throw new NotFoundError('not_found', 'no such campaign');
  }

  /** Renders the campaign for a sample recipient: a subject or text the template cannot carry is a 400 now, not a failure per recipient later. */
  private async checkRenders(subject: string, text: string): Promise<void> {
    try {
      await this.o.mail.templates.render('announcement', {
        recipient: { name: 'Alex' },
        room: { name: 'Room', url: `${this.o.mail.links.publicUrl}/` },
        sender: { name: 'Sender' },
        announcement: { subject, text },
        unsubscribeUrl: `${this.o.mail.links.publicUrl}/api/mail/unsubscribe`,
      });
    } catch (err) {
      throw new ValidationError(`the announcement cannot be mailed: ${(err as Error).message}`);
    }
  }


  private async view(c: Campaign): Promise<CampaignBody> {
    const [counts, perMinute] = await Promise.all([this.store.counts(c.id), c.state === 'running' ? this.store.sentLastMinute(c.id) : Promise.resolve(0)]);
    return {
      id: c.id,
      createdBy: c.createdBy,
      roomIds: c.roomIds,
      subject: c.subject,
      text: c.text,
      state: c.state,
      pausedBy: c.pausedBy,
      pauseReason: c.pauseReason,
      pausedAt: c.pausedAt?.toISOString() ?? null,
      stopPoint: c.stopPoint,
      waiting: c.state === 'running' ? c.gateNote : null,
      recipients: c.recipients,
      counts,
      perMinute,
      createdAt: c.createdAt.toISOString(),
      finishedAt: c.finishedAt?.toISOString() ?? null,
    };
  }
}
