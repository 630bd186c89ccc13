/**
 * Marks outbox rows as published in batches: one UPDATE per few milliseconds instead of one
 * per message. A mark lost to a crash or a database error only means the relay publishes that
 * message again later, with the same id, which clients drop.
 */
import type { Logger } from '../logger';
import type { MessageStore } from '../messages/message-store';

const FLUSH_AFTER_MS = 20;
const MAX_BATCH = 500;

export class PublishedMarks {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: MessageStore,
    private readonly logger: Logger,
  ) {}

  add(messageId: string): void {
    this.pending.push(messageId);
    if (this.pending.length >= MAX_BATCH) this.flushSoon(0);
    else this.flushSoon(FLUSH_AFTER_MS);
  }

  /** Writes whatever is pending; used at shutdown. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) {
      this.flushing = this.flushing
        .then(() => this.store.markPublished(batch))
        .catch((err: unknown) => this.logger.warn({ err: (err as Error).message, count: batch.length }, 'marking published failed; the relay will republish'));
    }
    await this.flushing;
  }

  private flushSoon(delay: number): void {
    if (this.timer && delay > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), delay);
  }
}
