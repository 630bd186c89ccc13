/**
 * One AMQP connection to the RabbitMQ cluster that survives node loss: it connects to any
 * live node (rotating through the list), and when its node dies it reconnects to the next one
 * with backoff. Callers never wait for a reconnect: while there is no connection they get a
 * BrokerUnavailable error at once, and the outbox relay publishes later.
 *
 * It also owns the health of its publish channel: what the channel last confirmed, whether a
 * resource alarm explains its silence, and replacing it when it is stuck. Callers only publish
 * and hear the broker's answer.
 */
import { connect as amqpConnect, type Channel, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { ROOM_EXCHANGE } from '../../../shared/protocol/routing';
import { UnavailableError } from '../errors';
import type { Logger } from '../logger';

export type BrokerState = 'connecting' | 'connected' | 'closed';

export interface BrokerConnectionOptions {
  urls: string[];
  logger: Logger;
  /** Called each time a connection (re)opens, e.g. to count reconnects. */
  onConnected?: (url: string) => void;
  /** A publish unconfirmed this long makes the connection check whether its channel is stuck. */
  stuckAfterMs: number;
  /** Opens an AMQP connection; unit tests pass a fake. */
  connect?: (url: string) => Promise<ChannelModel>;
}

const MAX_BACKOFF_MS = 2000;
const MIN_REPLACE_INTERVAL_MS = 1000;

export class BrokerConnection {
  private model: ChannelModel | null = null;
  private confirm: ConfirmChannel | null = null;
  private state: BrokerState = 'connecting';
  private blockedReason: string | null = null;
  /** When the broker last announced a block (ms epoch), 0 if never on this connection. */
  private blockedAt = 0;
  /** When a stuck publish channel was last swapped for a fresh one (ms epoch). */
  private replacedAt = 0;
  /** When each publish channel last confirmed anything: tells a stuck channel from a busy one. */
  private readonly lastConfirm = new WeakMap<ConfirmChannel, number>();
  /** A running check of whether a silent channel is stuck, per channel. */
  private readonly stuckChecks = new WeakMap<ConfirmChannel, Promise<void>>();
  /** The rejections of each channel's unconfirmed publishes: a replaced channel fails them at once. */
  private readonly unconfirmed = new WeakMap<ConfirmChannel, Set<(err: Error) => void>>();
  private next = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private firstConnect: Promise<void>;
  private resolveFirst!: () => void;

  constructor(private readonly opts: BrokerConnectionOptions) {
    if (opts.urls.length === 0) throw new Error('BrokerConnection needs at least one URL');
    this.next = Math.floor(Math.random() * opts.urls.length);
    this.firstConnect = new Promise((resolve) => (this.resolveFirst = resolve));
    this.connect();
  }

  get status(): BrokerState {
    return this.state;
  }

  /**
   * Why the broker is refusing our publishes for now (a memory or disk alarm), or null. While
   * blocked, publishes wait in the socket unconfirmed: nothing is wrong with the channel.
   */
  get blocked(): string | null {
    return this.blockedReason;
  }

  /** Resolves once connected, or after `timeoutMs` (whichever is first); never rejects. */
  async ready(timeoutMs: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.firstConnect, new Promise((r) => (t = setTimeout(r, timeoutMs)))]);
    clearTimeout(t);
    return this.state === 'connected';
  }

  /** The current publish channel (diagnostics and tests compare it to tell a replacement). */
  publishChannel(): ConfirmChannel {
    if (this.state !== 'connected' || !this.confirm) {
      throw new UnavailableError('broker_unavailable', 'the message broker is unreachable');
    }
    return this.confirm;
  }

  /**
   * Publishes to the room exchange on the publish channel. Resolves on the broker's confirm;
   * rejects with UnavailableError on a nack, when the channel closes first (its node died, or it
   * was replaced as stuck), or at once without a connection. It never times out by itself: a
   * confirm can come late (under load, or after a resource alarm) and still counts.
   */
  publish(routingKey: string, content: Buffer, props: Options.Publish): Promise<void> {
    let channel: ConfirmChannel;
    try {
      channel = this.publishChannel();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<void>((resolve, reject) => {
      const sentAt = Date.now();
      let pending = this.unconfirmed.get(channel);
      if (!pending) this.unconfirmed.set(channel, (pending = new Set()));
      const waiting = pending;
      // Only a channel that confirmed nothing at all since this publish may be stuck; a loaded
      // broker confirms late but keeps confirming, and a blocked one (resource alarm) confirms
      // once the alarm clears. A new channel would help neither.
      const timer = setTimeout(() => {
        if (this.silentSince(channel, sentAt)) this.checkStuck(channel, sentAt);
      }, this.opts.stuckAfterMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        waiting.delete(fail);
        reject(err);
      };
      waiting.add(fail);
      try {
        channel.publish(ROOM_EXCHANGE, routingKey, content, props, (err: unknown) => {
          if (!waiting.has(fail)) return; // already failed with its replaced channel
          if (err) {
            // A channel that refuses everything is as stuck as a silent one. Seen with RabbitMQ
            // 3.10 after a node dies: a channel that first published to a quorum queue during
            // its leader election nacked every publish for seconds, while a fresh channel on
            // the same node was confirmed at once.
            if (this.silentSince(channel, sentAt)) this.checkStuck(channel, sentAt);
            fail(new UnavailableError('broker_unavailable', 'the broker refused the message', err));
            return;
          }
          clearTimeout(timer);
          waiting.delete(fail);
          this.lastConfirm.set(channel, Date.now());
          resolve();
        });
      } catch (err) {
        fail(new UnavailableError('broker_unavailable', 'the message broker is unreachable', err));
      }
    });
  }

  /** No confirm on `channel` since `sentAt`, and no resource alarm to explain it. */
  private silentSince(channel: ConfirmChannel, sentAt: number): boolean {
    return (this.lastConfirm.get(channel) ?? 0) < sentAt && !this.blockedSince(sentAt);
  }

  /** Whether a resource alarm blocked our publishes at any time since `since` (ms epoch). */
  private blockedSince(since: number): boolean {
    return this.blockedReason !== null || this.blockedAt >= since;
  }

  /** One check per channel at a time, however many of its publishes time out together. */
  private checkStuck(channel: ConfirmChannel, sentAt: number): void {
    if (this.stuckChecks.has(channel)) return;
    const check = this.replaceIfStuck(channel, sentAt).finally(() => this.stuckChecks.delete(channel));
    this.stuckChecks.set(channel, check);
  }

  /**
   * Replaces the publish channel if it stopped confirming. Seen with RabbitMQ 3.10: after a
   * quorum queue's leader node dies, a channel can keep waiting on the old leader and never
   * confirm again, while a fresh channel routes to the new leader at once.
   *
   * The fresh channel is opened first, and its open-ok decides. The broker reads our socket in
   * order and stops reading it altogether while an alarm blocks us, so by the time the open-ok
   * arrives, any `connection.blocked` sent for our earlier publishes has been read too. Without
   * this a stalled event loop, which runs an expired publish timer before it reads the socket,
   * took a blocked connection for a stuck channel, and the relay republished what the broker
   * still held.
   */
  private async replaceIfStuck(stale: ConfirmChannel, sentAt: number): Promise<void> {
    const model = this.model;
    if (this.confirm !== stale || !model) return;
    // A fresh channel that misbehaves at once will not be helped by another one right away.
    if (Date.now() - this.replacedAt < MIN_REPLACE_INTERVAL_MS) return;
    let fresh: ConfirmChannel;
    try {
      fresh = await this.openPublishChannel(model);
    } catch {
      return;
    }
    if (this.model !== model || this.confirm !== stale || !this.silentSince(stale, sentAt)) {
      fresh.close().catch(() => undefined);
      return;
    }
    this.opts.logger.warn('publish channel stopped confirming; replacing it');
    this.replacedAt = Date.now();
    this.usePublishChannel(model, fresh);
    // What it never confirmed never will be: its publishers hear so now, not when the close
    // completes, which may take a while. New publishes already go to the fresh channel.
    const lost = new UnavailableError('broker_unavailable', 'the publish channel stopped confirming and was replaced');
    for (const fail of [...(this.unconfirmed.get(stale) ?? [])]) fail(lost);
    stale.close().catch(() => undefined);
  }

  /**
   * Runs `fn` on a channel of its own, closed afterwards, so a channel-level error
   * (say, a queue declared with other arguments) cannot break the publishing channel.
   */
  async withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    if (this.state !== 'connected' || !this.model) {
      throw new UnavailableError('broker_unavailable', 'the message broker is unreachable');
    }
    let ch: Channel;
    try {
      ch = await this.model.createChannel();
    } catch (err) {
      throw new UnavailableError('broker_unavailable', 'the message broker is unreachable', err);
    }
    ch.on('error', () => undefined); // the rejection of the failing call reports it
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    const model = this.model;
    this.model = null;
    this.confirm = null;
    await model?.close().catch(() => undefined);
  }

  private connect(): void {
    if (this.state === 'closed') return;
    const url = this.opts.urls[this.next % this.opts.urls.length] as string;
    this.next++;
    void this.open(url).catch((err: unknown) => {
      this.opts.logger.warn({ url: redact(url), err: (err as Error).message }, 'broker connect failed');
      this.scheduleReconnect();
    });
  }

  private async open(url: string): Promise<void> {
    const model = await (this.opts.connect ?? ((u: string) => amqpConnect(u, { timeout: 3000 })))(url);
    if (this.state === 'closed') {
      await model.close();
      return;
    }
    model.on('error', (err: Error) => this.opts.logger.warn({ err: err.message }, 'broker connection error'));
    model.on('blocked', (reason: string) => {
      this.blockedReason = reason || 'resource alarm';
      this.blockedAt = Date.now();
      this.opts.logger.warn({ reason }, 'broker blocked our publishes (resource alarm); sends are kept in the outbox');
    });
    model.on('unblocked', () => {
      this.blockedReason = null;
      this.opts.logger.info('broker unblocked our publishes');
    });
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = null;
      this.blockedReason = null;
      this.blockedAt = 0;
      this.confirm = null;
      if (this.state === 'closed') return;
      this.state = 'connecting';
      this.opts.logger.warn({ url: redact(url) }, 'broker connection lost; reconnecting');
      this.scheduleReconnect();
    });
    const confirm = await this.openPublishChannel(model);
    this.model = model;
    this.usePublishChannel(model, confirm);
    this.state = 'connected';
    this.attempt = 0;
    this.opts.logger.info({ url: redact(url) }, 'broker connected');
    this.opts.onConnected?.(url);
    this.resolveFirst();
  }

  private async openPublishChannel(model: ChannelModel): Promise<ConfirmChannel> {
    const channel = await model.createConfirmChannel();
    channel.on('error', (err: Error) => this.opts.logger.warn({ err: err.message }, 'publish channel error'));
    return channel;
  }

  /**
   * Makes `channel` the publish channel. If it closes while still in use on a live connection,
   * it is reopened, so one bad publish cannot stall the rest.
   */
  private usePublishChannel(model: ChannelModel, channel: ConfirmChannel): void {
    this.confirm = channel;
    channel.on('close', () => {
      if (this.model !== model || this.confirm !== channel || this.state !== 'connected') return;
      this.reopenPublishChannel(model);
    });
  }

  private reopenPublishChannel(model: ChannelModel): void {
    this.confirm = null;
    this.openPublishChannel(model)
      .then((fresh) => {
        if (this.model !== model) return fresh.close();
        this.usePublishChannel(model, fresh);
        return undefined;
      })
      .catch(() => model.close().catch(() => undefined));
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed' || this.timer) return;
    this.attempt++;
    const delay = Math.min(100 * 2 ** Math.min(this.attempt, 5), MAX_BACKOFF_MS) * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}

const redact = (url: string): string => url.replace(/\/\/[^@]*@/, '//***@');
