/**
 * Publishes room messages to `amq.topic` on a confirm channel. Each publish resolves on the
 * broker's confirm and rejects on a nack, a closed channel or the publish timeout. A confirm
 * that arrives after the timeout still counts: `onLateConfirm` hears of it, so the outbox row is
 * marked and nobody publishes the message a second time.
 */
import type { ConfirmChannel } from 'amqplib';
import { ROOM_EXCHANGE } from '../../../shared/protocol/routing';
import type { RoomMessage } from '../../../shared/protocol/messages';
import { UnavailableError } from '../errors';
import type { BrokerConnection } from './broker-connection';

/** Lost publishes remembered for the relay's next passes: a few of its batches. */
const MAX_LOST = 1000;

export interface PublisherOptions {
  timeoutMs: number;
  /** A publish that timed out was confirmed after all. */
  onLateConfirm?: (messageId: string) => void;
}

export class Publisher {
  /** When each publish channel last confirmed anything: tells a stuck channel from a busy one. */
  private readonly lastConfirm = new WeakMap<ConfirmChannel, number>();
  /** A running check of whether a silent channel is stuck, per channel. */
  private readonly stuckChecks = new WeakMap<ConfirmChannel, Promise<boolean>>();
  /** Message id → when its (latest) publish went out, until the broker answers or the channel closes. */
  private readonly awaiting = new Map<string, number>();
  /** Message id → when its publish was known to be lost (closed channel, nack, no connection). */
  private readonly lost = new Map<string, number>();

  constructor(
    private readonly broker: BrokerConnection,
    private readonly o: PublisherOptions,
  ) {}

  /**
   * Ids of messages this process published less than `maxAgeMs` ago and is still waiting on.
   * The outbox relay leaves them alone: publishing them again now would only make a duplicate.
   */
  awaitingConfirm(maxAgeMs: number): string[] {
    const since = Date.now() - maxAgeMs;
    const ids: string[] = [];
    for (const [id, at] of this.awaiting) {
      // Older ones are the relay's again; a channel that stays open but never answers would
      // otherwise keep them here for good. A late confirm still marks them (onLateConfirm).
      if (at < since) this.awaiting.delete(id);
      else ids.push(id);
    }
    return ids;
  }

  private silentSince(channel: ConfirmChannel, sentAt: number): boolean {
    return (this.lastConfirm.get(channel) ?? 0) < sentAt && !this.broker.blockedSince(sentAt);
  }

  /** One check per channel at a time, however many of its publishes time out together. */
  private replaceIfStuck(channel: ConfirmChannel, sentAt: number): Promise<boolean> {
    let check = this.stuckChecks.get(channel);
    if (!check) {
      check = this.broker
        .replaceIfStuck(channel, () => this.silentSince(channel, sentAt))
        .finally(() => this.stuckChecks.delete(channel));
      this.stuckChecks.set(channel, check);
    }
    return check;
  }

  /**
   * Up to `limit` ids of messages whose publish this process knows failed less than `maxAgeMs`
   * ago: no confirm will ever come, so the relay need not wait out its threshold before
   * publishing them again. Each id is handed out once, oldest first.
   */
  takeLost(maxAgeMs: number, limit: number): string[] {
    const since = Date.now() - maxAgeMs;
    const ids: string[] = [];
    for (const [id, at] of this.lost) {
      if (ids.length >= limit) break;
      this.lost.delete(id);
      if (at >= since) ids.push(id);
    }
    return ids;
  }

  private markLost(id: string): void {
    this.lost.set(id, Date.now());
    // While the broker is down the relay takes nothing, and this list only grows: keep the
    // newest. A message dropped from it is still relayed, after the relay's threshold.
    if (this.lost.size > MAX_LOST) {
      for (const old of this.lost.keys()) {
        this.lost.delete(old);
        if (this.lost.size <= MAX_LOST) break;
      }
    }
  }

  /** Resolves when the broker has confirmed the message; rejects with UnavailableError otherwise. */
  publish(routingKey: string, message: RoomMessage): Promise<void> {
    let channel: ConfirmChannel;
    try {
      channel = this.broker.publishChannel();
    } catch (err) {
      this.markLost(message.id);
      return Promise.reject(err as Error);
    }
    const content = Buffer.from(JSON.stringify(message));
    return new Promise<void>((resolve, reject) => {
      const sentAt = Date.now();
      let timedOut = false;
      this.awaiting.set(message.id, sentAt);
      /** Stops waiting on this publish; false if a later publish of the same message took over. */
      const forget = (): boolean => this.awaiting.get(message.id) === sentAt && this.awaiting.delete(message.id);
      const timer = setTimeout(() => {
        timedOut = true;
        // Only a channel that confirmed nothing at all since this publish may be stuck; a loaded
        // broker confirms late but keeps confirming, and a blocked one (resource alarm) confirms
        // once the alarm clears. A new channel would help neither.
        if (this.silentSince(channel, sentAt)) {
          void this.replaceIfStuck(channel, sentAt).then((gone) => {
            // Its confirm is lost with the channel: let the relay publish it again now.
            if (gone && forget()) this.markLost(message.id);
          });
        }
        reject(new UnavailableError('broker_unavailable', `no publish confirm within ${this.o.timeoutMs} ms`));
      }, this.o.timeoutMs);
      const settled = (): boolean => {
        clearTimeout(timer);
        return forget();
      };
      try {
        channel.publish(
          ROOM_EXCHANGE,
          routingKey,
          content,
          // Few properties: each becomes a header of every subscriber's STOMP frame, and the body
          // already carries the seq and time. Persistent, so any durable queue bound to the room
          // keeps it over a restart (quorum queues store every message anyway).
          { persistent: true, messageId: message.id, contentType: 'application/json' },
          (err: unknown) => {
            const current = settled();
            if (err) {
              // A nack, or the channel closed with this publish unconfirmed (its node died).
              if (current) this.markLost(message.id);
              // A channel that refuses everything is as stuck as a silent one. Seen with RabbitMQ
              // 3.10 after a node dies: a channel that first published to a quorum queue during
              // its leader election nacked every publish for seconds, while a fresh channel on
              // the same node was confirmed at once.
              if (this.silentSince(channel, sentAt)) void this.replaceIfStuck(channel, sentAt);
              reject(new UnavailableError('broker_unavailable', 'the broker refused the message', err));
              return;
            }
            this.lastConfirm.set(channel, Date.now());
            if (timedOut) this.o.onLateConfirm?.(message.id);
            else resolve();
          },
        );
      } catch (err) {
        if (settled()) this.markLost(message.id);
        reject(new UnavailableError('broker_unavailable', 'the message broker is unreachable', err));
      }
    });
  }
}
