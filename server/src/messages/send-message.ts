/**
 * The send path: commit first, answer the sender, then publish. The commit is the promise made
 * to the sender; the publish happens after the answer because waiting for the broker's confirm
 * (a quorum queue replicates and syncs it on a majority of nodes) would put the broker's
 * latency, and its overload, into every POST. A publish that fails or is never confirmed leaves
 * the message's publish job pending (the outbox), and the relay publishes it.
 */
import { Buffer } from 'node:buffer';
import { MAX_BODY_BYTES, type RoomMessage, type SendMessageRequest } from '../../../shared/protocol/messages';
import type { DeliveryLedger } from '../delivery/delivery-ledger';
import { AppError } from '../errors';
import type { Metrics } from '../metrics';
import type { PoolClient } from '../db/pool';
import type { MessageStore, StoreResult } from './message-store';

export class SendMessage {
  constructor(
    private readonly store: MessageStore,
    private readonly ledger: DeliveryLedger,
    private readonly metrics: Pick<Metrics, 'messagesPersisted'>,
  ) {}

  async send(roomId: string, senderId: string, req: SendMessageRequest): Promise<{ message: RoomMessage; replayed: boolean }> {
    this.checkSize(req);
    return this.published(await this.store.insert(roomId, senderId, req));
  }

  /**
   * Sends what `build` makes of the room under its lock (`MessageStore.insertBuilt`): one message
   * or several committed together; the first is the answer. Each is published like any other.
   */
  async sendBuilt(roomId: string, senderId: string, clientMsgId: string, build: (tx: PoolClient) => Promise<SendMessageRequest[]>): Promise<{ message: RoomMessage; replayed: boolean }> {
    const stored = await this.store.insertBuilt(roomId, senderId, clientMsgId, async (tx) => {
      const requests = await build(tx);
      for (const r of requests) this.checkSize(r);
      return requests;
    });
    // Every stored message is published; the first is what the sender asked for.
    const [first] = stored.map((s) => this.published(s));
    if (!first) throw new Error('sendBuilt: the build made no message');
    return first;
  }

  private checkSize(req: SendMessageRequest): void {
    const size = Buffer.byteLength(JSON.stringify(req.body), 'utf8');
    if (size > MAX_BODY_BYTES) throw new AppError(413, 'body_too_large', `message body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
  }

  /** Counts and publishes a newly stored message; a replay was published before. */
  private published(stored: StoreResult): { message: RoomMessage; replayed: boolean } {
    if (stored.replayed) return stored;
    this.metrics.messagesPersisted.inc({ kind: stored.message.kind });
    // Not awaited: the ledger records the broker's answer on the job, whenever it comes.
    void this.ledger.deliver(stored.publishJob, stored.message, 'request', this.store.publishLeaseMs);
    return { message: stored.message, replayed: false };
  }
}
