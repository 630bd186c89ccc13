/** Publishes room messages to `amq.topic`: persistent, and resolved only on the broker's confirm. */
import { ROOM_EXCHANGE } from '../../../shared/protocol/routing';
import type { RoomMessage } from '../../../shared/protocol/messages';
import { UnavailableError } from '../errors';
import type { BrokerConnection } from './broker-connection';

export class Publisher {
  /** When each publish channel last confirmed anything: tells a stuck channel from a busy one. */
  private readonly lastConfirm = new WeakMap<object, number>();

  constructor(
    private readonly broker: BrokerConnection,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves when the broker has confirmed the message; rejects with UnavailableError otherwise. */
  publish(routingKey: string, message: RoomMessage): Promise<void> {
    const channel = this.broker.publishChannel();
    const content = Buffer.from(JSON.stringify(message));
    return new Promise<void>((resolve, reject) => {
      const sentAt = Date.now();
      const timer = setTimeout(() => {
        // Only a channel that confirmed nothing at all since this publish is stuck; a loaded
        // broker confirms late but keeps confirming, and a new channel would not help it.
        if ((this.lastConfirm.get(channel) ?? 0) < sentAt) this.broker.recyclePublishChannel(channel);
        reject(new UnavailableError('broker_unavailable', `no publish confirm within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      try {
        channel.publish(
          ROOM_EXCHANGE,
          routingKey,
          content,
          {
            persistent: true,
            messageId: message.id,
            contentType: 'application/json',
            timestamp: Math.floor(Date.parse(message.createdAt) / 1000),
            headers: { 'x-room-seq': message.seq },
          },
          (err: unknown) => {
            clearTimeout(timer);
            this.lastConfirm.set(channel, Date.now());
            if (err) reject(new UnavailableError('broker_unavailable', 'the broker refused the message', err));
            else resolve();
          },
        );
      } catch (err) {
        clearTimeout(timer);
        reject(new UnavailableError('broker_unavailable', 'the message broker is unreachable', err));
      }
    });
  }
}
