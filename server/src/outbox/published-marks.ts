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
  /** Ids of batches handed to Postgres whose UPDATE has not finished yet. */
  private readonly writing = new Set<string>();
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

  /**
   * Messages the broker has confirmed whose outbox rows are not marked yet. The relay leaves them
   * alone: to it they look unpublished, and a pass in those few milliseconds would publish them
   * a second time.
   */
  unwritten(): string[] {
    return [...this.pending, ...this.writing];
  }

  /** Writes whatever is pending; used at shutdown. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) {
      for (const id of batch) this.writing.add(id);
      this.flushing = this.flushing
        .then(() => this.store.markPublished(batch))
        .catch((err: unknown) => this.logger.warn({ err: (err as Error).message, count: batch.length }, 'marking published failed; the relay will republish'))
        .finally(() => {
          for (const id of batch) this.writing.delete(id);
        });
    }
    await this.flushing;
  }

  private flushSoon(delay: number): void {
    if (this.timer && delay > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), delay);
  }
}
