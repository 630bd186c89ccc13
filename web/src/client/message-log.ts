/**
 * The messages of one room a client holds: in seq order, each message id once.
 *
 * Seqs are per room and gapless on the server, but a learner never sees all of them
 * (instructor-only questions and other people's direct messages are filtered out), so a gap
 * here is normal: the log orders by seq and never waits for a missing one.
 */
import type { RoomMessage } from '../../../shared/protocol/messages';

export interface Placement {
  /** The message the new one was put in front of; null when it went to the end. */
  before: RoomMessage | null;
}

export class MessageLog {
  private readonly list: RoomMessage[] = [];
  private readonly ids = new Set<string>();

  get messages(): readonly RoomMessage[] {
    return this.list;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Puts the message in seq order; null when this id is already held (a duplicate copy). */
  insert(message: RoomMessage): Placement | null {
    if (this.ids.has(message.id)) return null;
    this.ids.add(message.id);
    const at = this.indexAfter(message.seq);
    this.list.splice(at, 0, message);
    return { before: this.list[at + 1] ?? null };
  }

  /** Index of the first message with a seq above `seq` (live messages almost always go last). */
  private indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.list.length;
    if (hi === 0 || (this.list[hi - 1] as RoomMessage).seq <= seq) return hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.list[mid] as RoomMessage).seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
