/**
 * The webhook channel (docs/webhooks.md): instructors' endpoints for their rooms, and the
 * dispatcher that delivers the rooms' events to them in order, signed per Standard Webhooks.
 * Built once per app server; every server's dispatcher shares the same jobs.
 */
import type { Config } from '../../../runtime/config';
import type { EventType, RoomPosition } from '../../../shared/protocol/events';
import { parsePosition } from '../../../shared/protocol/events';
import { AppError, NotFoundError } from '../errors';
import { inTransaction, type Pool } from '../db/pool';
import type { EventStore } from '../events/event-store';
import type { RoomEventListener } from '../events/room-event-listener';
import type { Logger } from '../logger';
import type { MailChannel } from '../mail/mail-channel';
import { roomUrl } from '../mail/mail-links';
import type { Metrics } from '../metrics';
import { JobQueue, type QueueStats } from '../work/job-queue';
import { fixedSchedule } from '../work/retry-schedule';
import { newSecret } from './signature';
import { parseTargetUrl, resolveTarget, type Resolver, type TargetPolicy } from './target-guard';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookSender } from './webhook-sender';
import { WebhookStore } from './webhook-store';
import { streamRef, WEBHOOK_QUEUE, type DisabledReason, type WebhookAttempt, type WebhookEndpoint, type WebhookJob } from './webhook-types';

export { WebhookTargetError, classifyAddress } from './target-guard';
export { WEBHOOK_QUEUE, type WebhookAttempt, type WebhookEndpoint, type WebhookJob } from './webhook-types';

/** After a rotation the old secret keeps signing this long, so receivers can switch without losing a delivery. */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;
/** Endpoints a room may have: each is a POST per event, so more would amplify one message into many. */
export const MAX_ENDPOINTS_PER_ROOM = 10;

export interface WebhookChannelOptions {
  pool: Pool;
  config: Pick<Config, 'webhooks'>;
  events: Pick<EventStore, 'roomEvents' | 'head' | 'positionAfterSeq'>;
  listener: Pick<RoomEventListener, 'followAll'>;
  mail: Pick<MailChannel, 'mail' | 'links' | 'wakeSender'>;
  metrics: Metrics;
  logger: Logger;
  /** Name resolution for targets; tests may pin it. */
  resolve?: Resolver;
  /** How often an idle dispatcher looks for due jobs. */
  intervalMs?: number;
  /** The jobs' queue (default 'webhook'): a test that kills dispatchers keeps to a queue of its own. */
  queue?: string;
}

export interface EndpointInput {
  url: string;
  eventTypes: EventType[];
  description: string;
}

const notFound = (): NotFoundError => new NotFoundError('not_found', 'no such webhook in this room');

export class WebhookChannel {
  readonly store: WebhookStore;
  readonly jobs: JobQueue<WebhookJob>;
  readonly dispatcher: WebhookDispatcher;
  private readonly sender: WebhookSender;
  private readonly policy: TargetPolicy;

  constructor(private readonly o: WebhookChannelOptions) {
    const w = o.config.webhooks;
    this.policy = { allowPrivate: w.allowPrivate };
    this.store = new WebhookStore(o.pool);
    this.jobs = new JobQueue<WebhookJob>(o.pool, o.queue ?? WEBHOOK_QUEUE);
    this.sender = new WebhookSender({ timeoutMs: w.timeoutMs, policy: this.policy, ...(o.resolve ? { resolve: o.resolve } : {}) });
    this.dispatcher = new WebhookDispatcher({
      pool: o.pool,
      store: this.store,
      events: o.events,
      listener: o.listener,
      sender: this.sender,
      jobs: this.jobs,
      schedule: fixedSchedule(w.scheduleMs),
      disableAfterMs: w.disableAfterMs,
      concurrency: w.concurrency,
      timeoutMs: w.timeoutMs,
      disable: (id, reason) => this.disable(id, reason),
      metrics: o.metrics,
      logger: o.logger,
      ...(o.intervalMs === undefined ? {} : { intervalMs: o.intervalMs }),
    });
  }

  /** Starts delivering from this server. The API works without it. */
  async start(): Promise<void> {
    await this.dispatcher.start();
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
    this.sender.close();
  }

  /** Registers an endpoint; it gets the room's events from now on. The secret is in this answer only. */
  async create(roomId: string, ownerId: string, input: EndpointInput): Promise<WebhookEndpoint & { secret: string }> {
    const url = await this.checkTarget(input.url);
    const secret = newSecret();
    const endpoint = await inTransaction(this.o.pool, async (tx) => {
      if ((await this.store.countForUpdate(tx, roomId)) >= MAX_ENDPOINTS_PER_ROOM) {
        throw new AppError(409, 'too_many_webhooks', `a room has at most ${MAX_ENDPOINTS_PER_ROOM} webhook endpoints; delete one first`);
      }
      const e = await this.store.create(tx, { roomId, ownerId, url, eventTypes: input.eventTypes, description: input.description, secret });
      // The stream's job is made with the endpoint: both commit, or neither.
      await this.jobs.enqueue(tx, streamRef(e.id, roomId), { endpointId: e.id, roomId }, { delayMs: 0 });
      return e;
    });
    this.dispatcher.noteRoom(roomId);
    return { ...endpoint, secret };
  }

  list(roomId: string): Promise<WebhookEndpoint[]> {
    return this.store.list(roomId);
  }

  async get(roomId: string, id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.store.get(roomId, id);
    if (!endpoint) throw notFound();
    return endpoint;
  }

  /**
   * Changes URL, event types or description, and pauses (`enabled: false`) or resumes (`enabled: true`)
   * delivery. An endpoint whose owner left cannot be resumed (409 `webhook_owner_left`), so who
   * asks no longer matters (`_actorId`: the resumer once took the endpoint over, with the former
   * owner's URL and secret).
   */
  async update(roomId: string, id: string, _actorId: string, patch: Partial<EndpointInput> & { enabled?: boolean }): Promise<WebhookEndpoint> {
    const url = patch.url === undefined ? undefined : await this.checkTarget(patch.url);
    await inTransaction(this.o.pool, async (tx) => {
      await this.store.lockStream(tx, id);
      const { enabled, ...rest } = patch;
      const fields = url === undefined ? rest : { ...rest, url };
      if (Object.keys(fields).length > 0 && !(await this.store.update(tx, roomId, id, fields))) throw notFound();
      if (enabled !== undefined) {
        const done = await this.store.setEnabled(tx, roomId, id, enabled);
        if (done === 'missing') throw notFound();
        if (done === 'owner_left') {
          throw new AppError(
            409,
            'webhook_owner_left',
            'this endpoint was disabled because its owner left the room, and cannot be resumed: its URL and secret are theirs. Create a new endpoint instead (and delete this one)',
          );
        }
      }
      // Resumed, paused, or pointed elsewhere: the stream starts over at once (committed with the
      // change, which took the fence from any pass still running). New types or a description
      // need no new pass: a running one reads the endpoint again after every attempt.
      await this.jobs.wake(tx, [streamRef(id, roomId)], { preempt: patch.url !== undefined || enabled !== undefined });
    });
    this.dispatcher.noteRoom(roomId);
    this.dispatcher.poke(roomId);
    return this.get(roomId, id);
  }

  /** A new secret, returned once; the old one signs too until `previousSecretExpiresAt`. */
  async rotateSecret(roomId: string, id: string): Promise<{ secret: string; previousSecretExpiresAt: string }> {
    const secret = newSecret();
    const until = await this.store.rotate(roomId, id, secret, ROTATION_OVERLAP_MS);
    if (!until) throw notFound();
    return { secret, previousSecretExpiresAt: until.toISOString() };
  }

  async remove(roomId: string, id: string): Promise<void> {
    await inTransaction(this.o.pool, async (tx) => {
      await this.store.lockStream(tx, id);
      if (!(await this.store.delete(tx, roomId, id))) throw notFound();
      // Its stream finds the endpoint gone and ends.
      await this.jobs.wake(tx, [streamRef(id, roomId)], { preempt: true });
    });
  }

  /** The endpoint's newest delivery attempts. */
  async attempts(roomId: string, id: string, limit: number, before?: number): Promise<WebhookAttempt[]> {
    await this.get(roomId, id);
    return this.store.attempts(roomId, id, limit, before);
  }

  /**
   * Delivers again every event after `after`: a room position ("42.3") or a message seq (42:
   * everything after that message). Events keep their ids, so a receiver that dedupes by
   * webhook-id can tell what it had. Also moves the cursor ahead, to skip.
   */
  async replay(roomId: string, id: string, after: string | number): Promise<WebhookEndpoint> {
    await inTransaction(this.o.pool, async (tx) => {
      if (!(await this.store.get(roomId, id, tx))) throw notFound();
      const head = (await this.o.events.head(roomId, tx)) as RoomPosition;
      let to: RoomPosition | null;
      if (typeof after === 'number') to = after > head.seq ? null : await this.o.events.positionAfterSeq(roomId, after, tx);
      else to = parsePosition(after);
      if (!to || to.seq > head.seq || to.n > head.n) {
        throw new AppError(400, 'invalid_cursor', `after must be a message seq or a room position ("42.3") no later than the room's head, ${head.seq}.${head.n}`);
      }
      await this.store.moveCursor(tx, id, to);
      await this.jobs.wake(tx, [streamRef(id, roomId)], { preempt: true });
    });
    this.dispatcher.poke(roomId);
    return this.get(roomId, id);
  }

  stats(): Promise<QueueStats> {
    return this.jobs.stats();
  }

  /**
   * Refuses a URL that is malformed, has spaces or control characters, is not https, or whose host
   * resolves to a non-public address (unless allowed). Resolves to the URL as it is stored and called: normalised.
   */
  private async checkTarget(raw: string): Promise<string> {
    const url = parseTargetUrl(raw, this.policy);
    await resolveTarget(url, this.policy, this.o.resolve);
    return url.href;
  }

  /** Turns an endpoint off and, unless its owner left, mails the owner, in one transaction. */
  private async disable(endpointId: string, reason: Exclude<DisabledReason, 'paused'>): Promise<void> {
    const notice = await inTransaction(this.o.pool, async (tx) => {
      const n = await this.store.disable(tx, endpointId, reason);
      if (n?.ownerEmail && reason !== 'owner_left') {
        await this.o.mail.mail.enqueue(tx, `webhook-disabled:${endpointId}:${n.disabledAt}`, {
          to: n.ownerEmail,
          type: 'webhook_disabled',
          vars: {
            recipient: { name: n.ownerName },
            room: { name: n.roomName, url: roomUrl(this.o.mail.links, n.roomId, 'instructor') },
            endpoint: { url: n.url, description: n.description },
            reason,
            failingSince: n.failingSince ?? n.disabledAt,
            lastError: n.lastError ?? '',
          },
        });
      }
      return n;
    });
    if (!notice) return;
    this.o.metrics.webhooksDisabled.inc({ reason });
    this.o.logger.warn({ endpointId, roomId: notice.roomId, reason, lastError: notice.lastError }, 'webhook endpoint disabled');
    if (notice.ownerEmail && reason !== 'owner_left') this.o.mail.wakeSender();
  }
}
