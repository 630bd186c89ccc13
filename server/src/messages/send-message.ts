/**
 * The send path: commit first, answer the sender, then publish. The commit is the promise made
 * to the sender; the publish happens after the answer because waiting for the broker's confirm
 * (a quorum queue replicates and syncs it on a majority of nodes) would put the broker's
 * latency, and its overload, into every POST. A publish that fails or is never confirmed leaves
 * the message in the outbox, and the relay publishes it.
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
  private readonly publishing = new Set<Promise<void>>();

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
    const publishing = this.publish(routingKey, message).finally(() => this.publishing.delete(publishing));
    this.publishing.add(publishing);
    return { message, replayed };
  }

  /** Resolves once every publish started so far has been confirmed or handed to the relay. */
  async settled(): Promise<void> {
    await Promise.all([...this.publishing]);
  }

  private async publish(routingKey: string, message: RoomMessage): Promise<void> {
    try {
      await this.publisher.publish(routingKey, message);
      this.metrics.messagesPublished.inc({ path: 'request' });
      this.marks.add(message.id);
    } catch (err) {
      this.metrics.publishFailures.inc({ path: 'request' });
      this.logger.warn({ messageId: message.id, err: (err as Error).message }, 'publish deferred to the outbox relay');
    }
  }
}
