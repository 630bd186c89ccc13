/**
 * The send path: commit first, then publish. The sender is answered after the commit whatever
 * the broker does; an unconfirmed publish stays in the outbox for the relay.
 */
import { Buffer } from 'node:buffer';
import { MAX_BODY_BYTES, type RoomMessage, type SendMessageRequest } from '../../../shared/protocol/messages';
import type { Publisher } from '../broker/publisher';
import type { PublishedMarks } from '../outbox/published-marks';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { MessageStore } from './message-store';

export class SendMessage {
  constructor(
    private readonly store: MessageStore,
    private readonly publisher: Publisher,
    private readonly marks: PublishedMarks,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  async send(roomId: string, senderId: string, req: SendMessageRequest): Promise<{ message: RoomMessage; replayed: boolean }> {
    const size = Buffer.byteLength(JSON.stringify(req.body), 'utf8');
    if (size > MAX_BODY_BYTES) {
      throw new AppError(413, 'body_too_large', `message body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
    }
    const { message, routingKey, replayed } = await this.store.insert(roomId, senderId, req);
    if (replayed) return { message, replayed };
    this.metrics.messagesPersisted.inc({ kind: message.kind });
    try {
      await this.publisher.publish(routingKey, message);
      this.metrics.messagesPublished.inc({ path: 'request' });
      this.marks.add(message.id);
    } catch (err) {
      // Committed but not confirmed: the outbox relay publishes it.
      this.metrics.publishFailures.inc({ path: 'request' });
      this.logger.warn({ messageId: message.id, err: (err as Error).message }, 'publish deferred to the outbox relay');
    }
    return { message, replayed };
  }
}
