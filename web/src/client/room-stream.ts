/**
 * Up to where a client provably holds the messages of its room-wide stream, so its next resync
 * starts there and not at a guess (docs/guarantees.md, "Complete up to").
 *
 * The stream is numbered without gaps: for an instructor it is every message, numbered by seq;
 * for a learner it is the messages to everyone, numbered by `broadcastSeq`. Two facts are kept:
 * every stream message numbered up to `index` is held, and every stream message with a seq up
 * to `seq` is held. A resync's last page moves both at once (the room's newest numbers when it
 * was read); a message moves them when it closes the run of numbers. A number that arrives past
 * a hole waits until the hole is filled, live or by a resync, so a message published late (the
 * server's outbox relay) or lost in transit is never skipped.
 */
import type { RoomMessage } from '../../../shared/protocol/messages';

export class RoomStream {
  private index = 0;
  private seq = 0;
  /** Numbers held beyond the first hole, with their seqs. */
  private readonly ahead = new Map<number, number>();

  private constructor(private readonly byBroadcastSeq: boolean) {}

  /** The stream of `role`: every message for an instructor, messages to everyone for a learner. */
  static of(role: 'instructor' | 'learner'): RoomStream {
    return new RoomStream(role === 'learner');
  }

  /** Every message of the stream with a seq up to this one is held: where the next resync starts. */
  get completeThrough(): number {
    return this.seq;
  }

  /** Some message of the stream is missing below one that is held. */
  get hasHole(): boolean {
    return this.ahead.size > 0;
  }

  /** A message now held, from any source (live, resync, the answer to our own send). */
  add(message: RoomMessage): void {
    const n = this.byBroadcastSeq ? message.broadcastSeq : message.seq;
    if (n === null || n <= this.index) return;
    this.ahead.set(n, message.seq);
    this.advance();
  }

  /**
   * A resync's last page read the room when its newest seq was `through` and its newest
   * broadcast number `broadcastThrough`, and every message it returned is held.
   */
  completeUpTo(through: number, broadcastThrough: number): void {
    const index = this.byBroadcastSeq ? broadcastThrough : through;
    const seq = through;
    this.index = Math.max(this.index, index);
    this.seq = Math.max(this.seq, seq);
    for (const n of this.ahead.keys()) if (n <= this.index) this.ahead.delete(n);
    this.advance();
  }

  private advance(): void {
    for (let next = this.ahead.get(this.index + 1); next !== undefined; next = this.ahead.get(this.index + 1)) {
      this.ahead.delete(this.index + 1);
      this.index++;
      this.seq = Math.max(this.seq, next);
    }
  }
}
